//! The session's data as loaded: a JSON object whose values stay unparsed text until they
//! are read.
//!
//! Decoding an authentic cookie checks the whole object (serde_json validates every value
//! while measuring it) but builds no values: each entry records where its key and value lie
//! in the object's text. A typed read deserializes straight from that slice; only a value
//! handed out for mutation (or removed) is turned into a [`Value`] and kept. Writing the map
//! back copies unchanged values byte for byte.
//!
//! Change detection compares what each written key holds now with its value as loaded, so
//! writing an equal value is not a change, exactly as with a full map, but only the keys
//! that were written are ever parsed for it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// A session's data, lazily parsed. Keys are kept sorted and unique, like the
/// `serde_json::Map` it stands for (for a repeated key, the last one wins, as there).
#[derive(Clone, Default)]
pub(crate) struct LazyMap {
    /// The object's text as loaded (empty for a new session). Shared: snapshots are cheap.
    text: Arc<str>,
    /// Sorted by key, each key once.
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    key: KeyText,
    /// The value as loaded: a slice of `text`. `None` for a key added since.
    loaded: Option<Range<usize>>,
    current: Current,
}

/// Where a key's text is: in the loaded text (the common case: keys without escapes) or
/// on its own.
#[derive(Clone)]
enum KeyText {
    Loaded(Range<usize>),
    Owned(Box<str>),
}

#[derive(Clone)]
enum Current {
    /// Still the loaded text.
    Loaded,
    /// Parsed for mutation, or written.
    Value(Value),
    /// Removed.
    Removed,
}

impl LazyMap {
    /// Checks that `json` is one JSON object and records where its entries are, without
    /// parsing the values into anything.
    ///
    /// # Errors
    /// The serde_json error if `json` is not UTF-8 or not a well-formed JSON object.
    pub(crate) fn parse(json: &[u8]) -> Result<Self, serde_json::Error> {
        let text = std::str::from_utf8(json)
            .map_err(|_| de::Error::custom("the session data is not valid UTF-8"))?;
        let mut parser = serde_json::Deserializer::from_str(text);
        let mut entries = parser.deserialize_map(EntriesVisitor { text })?;
        parser.end()?;
        // Stable sort, then keep the last of equal keys: serde_json's `Map` semantics.
        entries.sort_by(|a, b| a.key(text).cmp(b.key(text)));
        entries.dedup_by(|later, kept| {
            let same = later.key(text) == kept.key(text);
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        Ok(Self {
            text: Arc::from(text),
            entries,
        })
    }

    /// A map holding `map`'s entries as if they had been loaded (for sessions read from
    /// another format).
    #[cfg(feature = "beaker")]
    pub(crate) fn from_map(map: &serde_json::Map<String, Value>) -> Result<Self, serde_json::Error> {
        Self::parse(&serde_json::to_vec(map)?)
    }

    /// The same keys and values as loaded, forgetting every change.
    pub(crate) fn as_loaded(&self) -> Self {
        let entries = self
            .entries
            .iter()
            .filter(|e| e.loaded.is_some())
            .map(|e| Entry {
                current: Current::Loaded,
                ..e.clone()
            })
            .collect();
        Self {
            text: Arc::clone(&self.text),
            entries,
        }
    }

    /// The value under `key` as a `T`, deserialized from its text (or from its parsed
    /// value, if it has been written or handed out for mutation).
    pub(crate) fn get<T: de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Option<Result<T, serde_json::Error>> {
        let entry = &self.entries[self.find(key).ok()?];
        match &entry.current {
            Current::Loaded => Some(serde_json::from_str(self.raw(entry)?)),
            Current::Value(value) => Some(T::deserialize(value)),
            Current::Removed => None,
        }
    }

    /// The value under `key`, parsed and kept, to change in place.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let at = self.find(key).ok()?;
        let loaded = match &self.entries[at].current {
            Current::Removed => return None,
            Current::Value(_) => None,
            Current::Loaded => Some(self.loaded_value(&self.entries[at])),
        };
        let entry = &mut self.entries[at];
        if let Some(value) = loaded {
            entry.current = Current::Value(value);
        }
        match &mut entry.current {
            Current::Value(value) => Some(value),
            _ => None,
        }
    }

    /// Stores `value` under `key`.
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        match self.find(key) {
            Ok(at) => self.entries[at].current = Current::Value(value),
            Err(at) => self.entries.insert(
                at,
                Entry {
                    key: KeyText::Owned(key.into()),
                    loaded: None,
                    current: Current::Value(value),
                },
            ),
        }
    }

    /// Removes `key`, returning its value.
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.find(key).ok()?;
        let entry = &mut self.entries[at];
        match std::mem::replace(&mut entry.current, Current::Removed) {
            Current::Loaded => Some(self.loaded_value(&self.entries[at])),
            Current::Value(value) => Some(value),
            Current::Removed => None,
        }
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.current = Current::Removed;
        }
    }

    /// The keys present, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| !matches!(e.current, Current::Removed))
            .map(|e| e.key(&self.text))
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.find(key)
            .is_ok_and(|at| !matches!(self.entries[at].current, Current::Removed))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys().next().is_none()
    }

    /// Whether the map differs from what was loaded: a key added or removed, or a value
    /// that is no longer equal to its loaded value. Parses only the written keys' values.
    pub(crate) fn changed(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| match (&entry.loaded, &entry.current) {
                (_, Current::Loaded) | (None, Current::Removed) => false,
                (Some(_), Current::Removed) | (None, Current::Value(_)) => true,
                (Some(_), Current::Value(value)) => *value != self.loaded_value(entry),
            })
    }

    /// Writes the map as a compact JSON object: unchanged values as their loaded bytes.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.push(b'{');
        let mut first = true;
        for entry in &self.entries {
            let raw = match &entry.current {
                Current::Removed => continue,
                Current::Loaded => self.raw(entry),
                Current::Value(_) => None,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, entry.key(&self.text))?;
            out.push(b':');
            match (&entry.current, raw) {
                (Current::Value(value), _) => serde_json::to_writer(&mut *out, value)?,
                (_, Some(raw)) => out.extend_from_slice(raw.as_bytes()),
                (_, None) => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// The whole map, parsed.
    #[cfg(feature = "beaker")]
    pub(crate) fn to_map(&self) -> serde_json::Map<String, Value> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let value = match &entry.current {
                    Current::Loaded => self.loaded_value(entry),
                    Current::Value(value) => value.clone(),
                    Current::Removed => return None,
                };
                Some((entry.key(&self.text).to_owned(), value))
            })
            .collect()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| e.key(&self.text).cmp(key))
    }

    fn raw(&self, entry: &Entry) -> Option<&str> {
        self.text.get(entry.loaded.clone()?)
    }

    /// The loaded value of `entry`, parsed. The text was validated when the map was
    /// loaded, so `Null` is unreachable in practice.
    fn loaded_value(&self, entry: &Entry) -> Value {
        self.raw(entry)
            .and_then(|raw| serde_json::from_str(raw).ok())
            .unwrap_or(Value::Null)
    }
}

impl Entry {
    fn key<'a>(&'a self, text: &'a str) -> &'a str {
        match &self.key {
            KeyText::Loaded(span) => text.get(span.clone()).unwrap_or_default(),
            KeyText::Owned(key) => key,
        }
    }
}

/// Records the entries of the object `text`, whose keys and values serde_json hands out
/// as slices of `text` (values as `RawValue`s: validated, not parsed).
struct EntriesVisitor<'de> {
    text: &'de str,
}

impl<'de> EntriesVisitor<'de> {
    /// Where `part`, a slice of `self.text`, lies in it.
    fn span<E: de::Error>(&self, part: &str) -> Result<Range<usize>, E> {
        let start = part.as_ptr().addr().wrapping_sub(self.text.as_ptr().addr());
        let span = start..start.wrapping_add(part.len());
        // serde_json borrows from its input; check it rather than trust it.
        match self.text.get(span.clone()) {
            Some(found) if found.as_ptr() == part.as_ptr() => Ok(span),
            _ => Err(E::custom(
                "a session entry does not lie in the session text",
            )),
        }
    }
}

impl<'de> Visitor<'de> for EntriesVisitor<'de> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            let value = map.next_value::<&'de RawValue>()?;
            entries.push(Entry {
                key: match key {
                    KeyStr::Borrowed(key) => KeyText::Loaded(self.span(key)?),
                    KeyStr::Owned(key) => KeyText::Owned(key.into_boxed_str()),
                },
                loaded: Some(self.span(value.get())?),
                current: Current::Loaded,
            });
        }
        Ok(entries)
    }
}

/// A key that borrows from the input when it has no escapes.
enum KeyStr<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Deserialize<'de> for KeyStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = KeyStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyStr<'de>, E> {
                Ok(KeyStr::Owned(v))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}
