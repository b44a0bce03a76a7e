//! Flash messages: one-shot notices carried across a redirect ("Saved.", "Wrong
//! password"), as Flask's `flash` and axum-messages give them. They live in the session
//! under [`FLASH_KEY`], so they need nothing but the session itself.

use serde_json::{Map, Value};

use crate::session::Session;
use crate::session::error::SessionError;

/// The session key that holds the pending flash messages.
pub const FLASH_KEY: &str = "_flash";

/// A flash message: a level of the application's choosing (`"info"`, `"error"`, ...) and
/// the text.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Flash {
    /// The level or category.
    pub level: String,
    /// The message.
    pub message: String,
}

impl Session {
    /// Adds a message for the next page that calls [`take_flashes`](Self::take_flashes)
    /// (typically after a redirect).
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig};
    /// # let sessions = SessionConfig::new(Mode::Signed, KeyRing::new(Key::generate()?)).build()?;
    /// # let now = cookie_session::time::OffsetDateTime::now_utc();
    /// let mut session = sessions.load([], now);
    /// session.flash("info", "Your note was saved.")?;
    /// // ... redirect; on the next page:
    /// let flashes = session.take_flashes();
    /// assert_eq!(flashes[0].message, "Your note was saved.");
    /// assert!(session.take_flashes().is_empty(), "shown once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`SessionError::Value`] if [`FLASH_KEY`] holds something other than flash messages
    /// (the application wrote it); the session is unchanged then.
    pub fn flash(&mut self, level: &str, message: &str) -> Result<(), SessionError> {
        let mut pending: Vec<Value> = self.get(FLASH_KEY)?.unwrap_or_default();
        let mut entry = Map::new();
        entry.insert("level".into(), level.into());
        entry.insert("message".into(), message.into());
        pending.push(Value::Object(entry));
        self.insert(FLASH_KEY, &pending)
    }

    /// Removes and returns the pending messages, oldest first. Entries that are not flash
    /// messages are dropped.
    pub fn take_flashes(&mut self) -> Vec<Flash> {
        // Only a change if there was something to take: reading an empty list is not one.
        if !self.contains_key(FLASH_KEY) {
            return Vec::new();
        }
        let Some(Value::Array(entries)) = self.remove(FLASH_KEY) else {
            return Vec::new();
        };
        entries
            .into_iter()
            .filter_map(|entry| {
                let text = |field: &str| entry.get(field)?.as_str().map(str::to_owned);
                Some(Flash {
                    level: text("level")?,
                    message: text("message")?,
                })
            })
            .collect()
    }
}
