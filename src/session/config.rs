//! Session configuration: the cookie's name and attributes, lifetimes, when to re-send the
//! cookie, and how changes are saved. [`SessionConfig::build`] validates it once, at
//! start-up, into [`Sessions`](crate::Sessions).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::legacy::{LegacyFormat, Place};
use crate::session::error::ConfigError;
use crate::wire::codec::{Codec, DEFAULT_MAX_SIZE};
use crate::wire::format::{self, Mode};
use crate::wire::format::{MAX_ATTRIBUTE_LEN, is_valid_attribute};
use crate::wire::key::KeyRing;
use crate::wire::stamp::{Persistence, SessionId};

/// The `SameSite` attribute. It is always written explicitly: browsers disagree on the
/// default when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SameSite {
    /// Sent only on same-site requests: strongest CSRF protection, but a visitor following
    /// a link from another site arrives logged out.
    Strict,
    /// Sent on same-site requests and top-level navigations (links) from other sites.
    Lax,
    /// Sent on all requests, including cross-site ones; requires `Secure`. Needed for
    /// embedded (iframe) use; pair it with CSRF protection.
    None,
}

/// When a response re-sends the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TouchPolicy {
    /// Re-issue on every request that loaded a session (Beaker's and TurboGears' behaviour):
    /// the idle deadline slides on every visit, but every response carries a `Set-Cookie`,
    /// and concurrent requests race to overwrite each other's cookie.
    Always,
    /// Re-issue only when the session changed (TurboGears' `tg_avoid_touch`). Read-only
    /// requests send nothing; the idle deadline moves only on changes, so a visitor who only
    /// reads is logged out after the idle timeout.
    OnChange,
    /// Re-issue when the session changed, or when a request that read it finds that more
    /// than `after_percent` percent of the idle timeout has passed since the cookie was
    /// issued (ASP.NET Core's sliding expiration uses half). Active visitors never time out,
    /// and read-only traffic sends at most one `Set-Cookie` per that much of the window.
    Renew {
        /// The share of the idle timeout, 1 to 100.
        after_percent: u8,
    },
}

impl TouchPolicy {
    /// Renew after half of the idle timeout: the default.
    pub const SLIDING: Self = Self::Renew { after_percent: 50 };
}

/// How changes reach the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SaveMode {
    /// Every change made during the request is sent at its end.
    Automatic,
    /// Beaker's semantics: only the state committed by the last
    /// [`Session::save`](crate::Session::save) is sent; later, unsaved changes are
    /// **dropped**. [`delete`](crate::Session::delete) and
    /// [`regenerate`](crate::Session::regenerate) take effect without a save.
    Explicit,
}

/// What a server-side save does when another request saved the same session meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictPolicy {
    /// Reload, re-apply the keys this request changed, save again: changes to different keys
    /// all survive, and for a key both changed, the last commit wins. The default.
    LastWriteWins,
    /// As `LastWriteWins` for different keys; but if the other request changed a key this
    /// one changed too, this request fails with
    /// [`StoreError::Conflict`](crate::store::StoreError::Conflict) and writes nothing.
    FailOnSameKey,
}

/// Asks the application whether a session was revoked: called with each authentic
/// cookie's [`Revocable`] view on load; `true` means revoked.
pub type RevocationCheck = Arc<dyn Fn(&Revocable<'_>) -> bool + Send + Sync>;

/// What a revocation check sees of an authentic cookie: its id, when it was issued, and
/// (for cookie sessions) its data, read-only.
pub struct Revocable<'a> {
    pub(crate) id: SessionId,
    pub(crate) issued_at: OffsetDateTime,
    pub(crate) data: &'a crate::wire::map::LazyMap,
}

impl fmt::Debug for Revocable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Session values are never shown.
        f.debug_struct("Revocable")
            .field("id", &self.id)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

impl Revocable<'_> {
    /// The session id.
    #[must_use]
    pub const fn id(&self) -> SessionId {
        self.id
    }

    /// When the session was first issued (its id was made).
    #[must_use]
    pub const fn issued_at(&self) -> OffsetDateTime {
        self.issued_at
    }

    /// The value under `key` as `T`, if there is one and it converts. A server-side
    /// session's data is not read yet when this runs: it has none here.
    #[must_use]
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.data.get(key).and_then(Result::ok)
    }
}

/// The configuration of a session cookie, built with `with_*` setters and validated by
/// [`build`](Self::build).
///
/// ```
/// use std::time::Duration;
/// use cookie_session::{Key, KeyRing, Mode, Persistence, SessionConfig, TouchPolicy};
///
/// let sessions = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
///     .with_name("__Host-visit")
///     .with_idle_timeout(Duration::from_secs(30 * 60))
///     .with_persistence(Persistence::Persistent)
///     .with_touch_policy(TouchPolicy::SLIDING)
///     .build()?;
/// assert_eq!(sessions.name(), "__Host-visit");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SessionConfig {
    pub(crate) name: String,
    pub(crate) mode: Mode,
    pub(crate) ring: KeyRing,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
    pub(crate) persistence: Persistence,
    pub(crate) idle: Duration,
    pub(crate) lifetime: Duration,
    pub(crate) touch: TouchPolicy,
    pub(crate) reissue_older_keys: bool,
    pub(crate) save: SaveMode,
    pub(crate) max_size: usize,
    pub(crate) compression: Compression,
    pub(crate) max_cookies: usize,
    pub(crate) max_total: usize,
    pub(crate) max_session: usize,
    /// The request parameter that may carry the session (off: `None`).
    pub(crate) token: Option<String>,
    pub(crate) token_order: TokenOrder,
    pub(crate) max_form: usize,
    pub(crate) revocation: Option<RevocationCheck>,
    /// Another cookie format sessions are also read from (and maybe written in).
    pub(crate) legacy: Option<Arc<dyn LegacyFormat>>,
    pub(crate) seal_store: bool,
    /// A sealed store also reads plain records (a migration to sealing, switched off after).
    pub(crate) seal_migration: bool,
    pub(crate) conflicts: ConflictPolicy,
    /// The server part's visit-event observer (`crate::events`), carried here unseen: set
    /// and read by that part.
    pub(crate) observer: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl SessionConfig {
    /// The defaults: name `__Host-session`, `Path=/`, no `Domain`, `Secure`, `HttpOnly`,
    /// `SameSite=Lax`, a browser-session cookie, idle timeout 20 minutes, lifetime 14 days,
    /// [`TouchPolicy::SLIDING`], older keys re-issued, [`SaveMode::Automatic`], 4096 bytes,
    /// no compression, one cookie, no token parameter, no revocation check.
    #[must_use]
    pub fn new(mode: Mode, ring: KeyRing) -> Self {
        Self {
            name: "__Host-session".to_owned(),
            mode,
            ring,
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            persistence: Persistence::BrowserSession,
            idle: Duration::from_secs(20 * 60),
            lifetime: Duration::from_secs(14 * 86_400),
            touch: TouchPolicy::SLIDING,
            reissue_older_keys: true,
            save: SaveMode::Automatic,
            max_size: DEFAULT_MAX_SIZE,
            compression: Compression::Off,
            max_cookies: 1,
            max_total: crate::wire::codec::DEFAULT_MAX_TOTAL_SIZE,
            max_session: crate::wire::codec::DEFAULT_MAX_SESSION_SIZE,
            token: None,
            token_order: TokenOrder::CookieFirst,
            max_form: DEFAULT_MAX_FORM_SIZE,
            revocation: None,
            legacy: None,
            seal_store: false,
            seal_migration: false,
            conflicts: ConflictPolicy::LastWriteWins,
            observer: None,
        }
    }

    /// The cookie name. Default `__Host-session`: the `__Host-` prefix makes browsers
    /// refuse the cookie unless it is `Secure`, `Path=/` and host-only, so a sibling
    /// subdomain cannot plant or overwrite it (cookie tossing).
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The `Path` attribute. Default `/`; a narrower path hides the session from the rest
    /// of the site (and is not allowed with a `__Host-` name).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The `Domain` attribute. Default none (host-only): setting it shares the cookie with
    /// every subdomain, and every subdomain can then overwrite it.
    #[must_use]
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// The `HttpOnly` attribute. Default on: scripts cannot read the cookie, so an XSS flaw
    /// cannot steal the session. Turn it off only if client code must read a signed session.
    #[must_use]
    pub const fn with_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The `SameSite` attribute. Default [`SameSite::Lax`].
    #[must_use]
    pub const fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// The `Partitioned` attribute (CHIPS): the browser keeps a separate cookie per
    /// top-level site, for embedded use. Default off; requires `Secure`.
    #[must_use]
    pub const fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// **Drops the `Secure` attribute**, so the cookie also travels over plain HTTP, where
    /// anyone on the network can read and replay it. Only for local development over
    /// `http://`; combine it with a name without `__Host-`/`__Secure-`. (Current browsers
    /// accept `Secure` cookies from `http://localhost`, so you may not need this.)
    #[must_use]
    pub const fn with_insecure_http_for_local_development(mut self) -> Self {
        self.secure = false;
        self
    }

    /// A browser-session or persistent cookie. Default [`Persistence::BrowserSession`].
    #[must_use]
    pub const fn with_persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// How long a session stays valid without being re-issued. Default 20 minutes
    /// (TurboGears' `visit.timeout`). Shorter limits the use of a stolen or abandoned
    /// cookie; see [`TouchPolicy`] for how re-issuing interacts with it.
    #[must_use]
    pub const fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How long a session can live however active it is. Default 14 days; it bounds how
    /// long a replayed cookie works. Deadlines saturate at 9999-12-31T23:59:59Z, so
    /// `Duration::MAX` is accepted (and unwise).
    #[must_use]
    pub const fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// When to re-send the cookie. Default [`TouchPolicy::SLIDING`]: a visitor who only reads
    /// stays logged in while active, and read-only requests send a `Set-Cookie` at most once
    /// per half idle window. [`TouchPolicy::OnChange`] never re-sends for reads (and so logs
    /// a reading visitor out after the idle timeout).
    #[must_use]
    pub const fn with_touch_policy(mut self, touch: TouchPolicy) -> Self {
        self.touch = touch;
        self
    }

    /// Whether a session opened with an older key of the ring is re-issued under the
    /// current key on that response. Default on, so rotation completes without logging
    /// anyone out; off means such cookies move only when they change.
    #[must_use]
    pub const fn with_reissue_older_keys(mut self, reissue: bool) -> Self {
        self.reissue_older_keys = reissue;
        self
    }

    /// Automatic or explicit saving. Default [`SaveMode::Automatic`].
    #[must_use]
    pub const fn with_save_mode(mut self, save: SaveMode) -> Self {
        self.save = save;
        self
    }

    /// The limit on `name + value` of the cookie. Default 4096, what browsers store; a
    /// larger value produces cookies browsers drop.
    #[must_use]
    pub const fn with_max_size(mut self, bytes: usize) -> Self {
        self.max_size = bytes;
        self
    }

    /// Compresses the session's JSON (raw deflate) when that makes the cookie smaller, so
    /// that a session several times larger fits one cookie (the benchmark's 3 KB cart
    /// shrinks 5x). For **signed** mode, whose data the client can read anyway; in
    /// encrypted mode [`build`](Self::build) refuses it, since there the cookie's length
    /// would reveal the data's redundancy: see
    /// [`with_compression_leaking_length`](Self::with_compression_leaking_length).
    /// Compressed cookies are read whatever this setting, so turning it off later logs no
    /// one out.
    #[must_use]
    pub const fn with_compression(mut self) -> Self {
        self.compression = Compression::Requested;
        self
    }

    /// Compresses in either mode, **accepting that in encrypted mode the cookie's length
    /// reveals how compressible the session's data is**. When a session holds a secret and
    /// also a value an attacker can influence (a search term, a form field, a referrer
    /// stored in the session), the attacker can recover the secret a few bytes at a time by
    /// watching the cookie's length, as the CRIME and BREACH attacks did to compressed TLS
    /// and HTTP. Use it only if no attacker-influenced value ever shares a session with a
    /// secret. SECURITY.md has the details.
    #[must_use]
    pub const fn with_compression_leaking_length(mut self) -> Self {
        self.compression = Compression::LeakingLength;
        self
    }

    /// Splits a session too large for one cookie across up to `cookies` cookies: `name`,
    /// then `name.2`, `name.3`, ... ([`chunk_name`](crate::chunk_name)), each within the
    /// browser's 4096-byte limit. Default 1 (no splitting); at most
    /// [`MAX_CHUNKS`](crate::MAX_CHUNKS). The pieces are authenticated as one value: a
    /// request missing one, or with pieces reordered, repeated or mixed from two sessions,
    /// gets a new session and the pieces are removed. Pieces a shrinking session no longer
    /// needs are removed in the same response. All pieces together are limited by
    /// [`with_max_total_size`](Self::with_max_total_size).
    #[must_use]
    pub const fn with_max_cookies(mut self, cookies: usize) -> Self {
        self.max_cookies = cookies;
        self
    }

    /// Limits the sum of `name + value` over a split session's cookies. Default
    /// [`DEFAULT_MAX_TOTAL_SIZE`](crate::DEFAULT_MAX_TOTAL_SIZE) (6 KiB): servers commonly
    /// refuse a request header over 8 KiB (nginx and Apache per line, Tomcat for all
    /// headers), and the `Cookie` header carries the site's other cookies too. A larger
    /// session fails with the usual [`EncodeError::TooLarge`](crate::EncodeError::TooLarge).
    #[must_use]
    pub const fn with_max_total_size(mut self, bytes: usize) -> Self {
        self.max_total = bytes;
        self
    }

    /// The most bytes of JSON a session may hold; a compressed cookie stops inflating
    /// there. Default [`DEFAULT_MAX_SESSION_SIZE`](crate::DEFAULT_MAX_SESSION_SIZE) (64 KiB).
    #[must_use]
    pub const fn with_max_session_size(mut self, bytes: usize) -> Self {
        self.max_session = bytes;
        self
    }

    /// Also accepts the session from the request parameter `name`, for clients without
    /// working cookies (TurboGears' `visit.source = 'cookie, form'` with `visit.form.name`,
    /// whose default is `tg_visit`): the URL query, and with
    /// [`SessionLayer::with_form_bodies`](crate::tower::SessionLayer::with_form_bodies) an
    /// `application/x-www-form-urlencoded` body. The tower layer removes the parameter
    /// before the handler sees the request, and
    /// [`Session::token`](crate::Session::token) gives the value to put into links and
    /// forms. `name` must be a plain form-field name (letters, digits, `_`, `-`, `.`; at
    /// most 64), checked at [`build`](Self::build).
    ///
    /// Default off, and keep it off unless some clients cannot keep cookies: a session in a
    /// URL leaks through logs, `Referer` headers, browser history and shared links, and a
    /// link can carry someone else's session to a victim. What the crate does about that:
    /// responses to such requests get `Referrer-Policy: no-referrer` and
    /// `Cache-Control: no-store`, a session that came from a parameter is never moved into
    /// a cookie, and `regenerate()` at login still issues a fresh id (SECURITY.md).
    ///
    /// A token is one value: it holds at most what one cookie does
    /// ([`with_max_size`](Self::with_max_size), 4096 bytes by default), never split as
    /// [`with_max_cookies`](Self::with_max_cookies) splits cookies. A session larger than
    /// that makes [`Session::token`](crate::Session::token) fail with
    /// [`EncodeError::TokenTooLarge`](crate::EncodeError::TokenTooLarge); with server-side
    /// sessions the token is only the signed id and the bound never matters.
    #[must_use]
    pub fn with_token_parameter(mut self, name: impl Into<String>) -> Self {
        self.token = Some(name.into());
        self
    }

    /// Whether the cookie or the parameter is tried first when a request brings both
    /// (TurboGears' order in `visit.source`). Default [`TokenOrder::CookieFirst`].
    #[must_use]
    pub const fn with_token_order(mut self, order: TokenOrder) -> Self {
        self.token_order = order;
        self
    }

    /// The largest form body the tower layer reads to find the token parameter; a larger
    /// form reaches the handler unchanged, its token not taken (the framework's body limit
    /// decides about it). Default [`DEFAULT_MAX_FORM_SIZE`] (16 KiB).
    #[must_use]
    pub const fn with_max_form_size(mut self, bytes: usize) -> Self {
        self.max_form = bytes;
        self
    }

    /// Checks each authentic session on load: `check(id, issued_at)` returning `true`
    /// revokes it (it loads as a new session and its cookie is removed). Use it to make a
    /// logout final, e.g. with a list of revoked session ids kept until their lifetime ends.
    #[must_use]
    pub fn with_revocation(
        self,
        check: impl Fn(SessionId, OffsetDateTime) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.with_revocation_check(move |r: &Revocable<'_>| check(r.id(), r.issued_at()))
    }

    /// Like [`with_revocation`](Self::with_revocation), with the cookie's data in view:
    /// "log out everywhere" for cookie sessions, with a per-user generation. Store the
    /// user's generation in the session at login; bump it in your database to end every
    /// session issued before.
    ///
    /// ```
    /// # use cookie_session::{Key, KeyRing, Mode, SessionConfig, Revocable};
    /// # fn current_generation(_user: &str) -> u64 { 3 }
    /// let config = SessionConfig::new(Mode::Encrypted, KeyRing::new(Key::generate()?))
    ///     .with_revocation_check(|session: &Revocable<'_>| {
    ///         match (session.get::<String>("user"), session.get::<u64>("generation")) {
    ///             (Some(user), Some(generation)) => generation < current_generation(&user),
    ///             _ => false, // not logged in: nothing to revoke
    ///         }
    ///     });
    /// # Ok::<(), cookie_session::KeyError>(())
    /// ```
    #[must_use]
    pub fn with_revocation_check(
        mut self,
        check: impl Fn(&Revocable<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.revocation = Some(Arc::new(check));
        self
    }

    /// Server-side sessions: seal each record at rest with XAES-256-GCM under the key ring
    /// (bound to its session id), so that a dump of the store shows no session data and a
    /// record written or moved by someone without the key fails to open. Default off:
    /// records are plain JSON, readable (and writable) by whoever can reach the store.
    ///
    /// Once on, a plain record is refused like a damaged one (the session starts empty):
    /// otherwise whoever can write the store could replace a live record with
    /// `{"user":"admin"}`. To turn sealing on over a store that holds plain records, add
    /// [`with_sealing_migration(true)`](Self::with_sealing_migration) for one session
    /// lifetime. Turning sealing off reads sealed records still. Costs about 4/3 of the
    /// record's size and one encryption per write.
    #[must_use]
    pub const fn with_sealed_store(mut self, seal: bool) -> Self {
        self.seal_store = seal;
        self
    }

    /// Server-side sessions, with [`with_sealed_store(true)`](Self::with_sealed_store): a
    /// migration switch that lets the sealed store read plain records too, and seals each
    /// one on the request that reads it. Default off.
    ///
    /// While it is on, sealing does not protect against a writer without the key (a plain
    /// record they plant is read), so turn it on only to move a store to sealing and off
    /// again once every plain record has been rewritten or has expired: after the session
    /// lifetime ([`with_lifetime`](Self::with_lifetime), 14 days by default). Has no effect
    /// without sealing (plain records are then the format).
    #[must_use]
    pub const fn with_sealing_migration(mut self, accept_plain: bool) -> Self {
        self.seal_migration = accept_plain;
        self
    }

    /// Server-side sessions: what a save does when another request saved the same session
    /// meanwhile. Default [`ConflictPolicy::LastWriteWins`].
    #[must_use]
    pub const fn with_conflict_policy(mut self, policy: ConflictPolicy) -> Self {
        self.conflicts = policy;
        self
    }

    /// Also reads Beaker / TurboGears cookies of this cookie name, and writes either
    /// format (see [`BeakerMigration`](crate::beaker::BeakerMigration)). The application
    /// code does not change: Beaker's internal keys (`_id`, `_creation_time`, ...) are kept
    /// out of the session map, and preserved when a Beaker cookie is written back. A Beaker
    /// `_id` becomes the session id; the configured idle timeout and lifetime apply to
    /// Beaker sessions too.
    #[cfg(feature = "beaker")]
    #[cfg_attr(docsrs, doc(cfg(feature = "beaker")))]
    #[must_use]
    pub fn with_beaker(
        self,
        format: crate::legacy::beaker::BeakerFormat,
        migration: crate::legacy::beaker::BeakerMigration,
    ) -> Self {
        self.with_legacy(crate::legacy::beaker::seam(format, migration))
    }

    /// Server-side sessions shared with a Beaker application (`session.type` = `file`,
    /// `ext:redis`, `ext:memcached`, `ext:database`): the cookie is Beaker's id cookie
    /// (`ids`: plain, or signed with `session.secret`), read and written, and the store is
    /// keyed by the raw id, as Beaker's backends are. Use it with a store in Beaker's
    /// layout (`store::BeakerStore`), the cookie name Beaker uses (`session.key`, by
    /// default `beaker.session.id`), and an idle timeout equal to Beaker's
    /// `session.timeout`. Sessions of this crate's own format are still read (their ids
    /// are authentic), but never written.
    #[cfg(feature = "beaker")]
    #[cfg_attr(docsrs, doc(cfg(feature = "beaker")))]
    #[must_use]
    pub fn with_beaker_ids(self, ids: crate::legacy::beaker::BeakerIds) -> Self {
        self.with_legacy(crate::legacy::beaker::id_seam(ids))
    }

    /// Server-side sessions shared with a TurboGears 1 application's visit table: the cookie
    /// is TurboGears' visit cookie (the 40-digit visit key, `visit.cookie.name`, by default
    /// `tg-visit`), read and written, and the store is keyed by the visit key. Use it with
    /// [`VisitStore`](crate::store::VisitStore) and an idle timeout equal to
    /// `visit.timeout`. With `visit.source = form`, name the parameter
    /// ([`with_token_parameter`](Self::with_token_parameter)`("tg_visit")`).
    #[cfg(feature = "turbogears")]
    #[cfg_attr(docsrs, doc(cfg(feature = "turbogears")))]
    #[must_use]
    pub fn with_turbogears_visits(self) -> Self {
        self.with_legacy(crate::legacy::turbogears::seam())
    }

    /// Also reads sessions from cookies in `format` (see
    /// [`with_beaker`](Self::with_beaker)).
    #[cfg_attr(not(any(feature = "beaker", feature = "turbogears")), allow(dead_code))]
    pub(crate) fn with_legacy(mut self, format: Arc<dyn LegacyFormat>) -> Self {
        self.legacy = Some(format);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !format::is_valid_name(&self.name) {
            return Err(ConfigError::InvalidName);
        }
        check_attribute("Path", &self.path)?;
        if !self.path.starts_with('/') {
            return Err(ConfigError::InvalidAttribute { attribute: "Path" });
        }
        if let Some(domain) = &self.domain {
            check_attribute("Domain", domain)?;
        }
        // Browsers match the prefixes case-insensitively (RFC 6265bis): `__HOST-sid` gets
        // the `__Host-` rules there, so it must get them here.
        for prefix in ["__Secure-", "__Host-"] {
            if has_prefix(&self.name, prefix) && !self.secure {
                return Err(ConfigError::PrefixRequiresSecure { prefix });
            }
        }
        if has_prefix(&self.name, "__Host-") {
            if self.path != "/" {
                return Err(ConfigError::HostPrefixRequiresRootPath);
            }
            if self.domain.is_some() {
                return Err(ConfigError::HostPrefixForbidsDomain);
            }
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneRequiresSecure);
        }
        if self.partitioned && !self.secure {
            return Err(ConfigError::PartitionedRequiresSecure);
        }
        if let TouchPolicy::Renew { after_percent } = self.touch
            && !(1..=100).contains(&after_percent)
        {
            return Err(ConfigError::InvalidRenewThreshold(after_percent));
        }
        if self.idle.as_secs() == 0 || self.lifetime.as_secs() == 0 {
            return Err(ConfigError::ZeroDuration);
        }
        if self.compression == Compression::Requested && self.mode == Mode::Encrypted {
            return Err(ConfigError::CompressionRevealsLength);
        }
        if !(1..=crate::MAX_CHUNKS).contains(&self.max_cookies) {
            return Err(ConfigError::InvalidMaxCookies(self.max_cookies));
        }
        if let Some(name) = &self.token
            && !is_plain_field_name(name)
        {
            return Err(ConfigError::InvalidTokenParameter);
        }
        Ok(())
    }

    /// The touch policy.
    #[must_use]
    pub fn touch_policy(&self) -> TouchPolicy {
        self.touch
    }

    /// Where this configuration writes the cookie, for another format's writer.
    pub(crate) fn place(&self) -> Place<'_> {
        Place {
            name: &self.name,
            domain: self.domain.as_deref(),
            path: &self.path,
            idle: self.idle,
            lifetime: self.lifetime,
        }
    }

    pub(crate) fn codec(&self) -> Codec {
        let codec = Codec::new(self.mode, self.ring.clone())
            .with_max_size(self.max_size)
            .with_max_cookies(self.max_cookies)
            .with_max_total_size(self.max_total)
            .with_max_session_size(self.max_session);
        match self.compression {
            Compression::Off => codec,
            Compression::Requested => codec.with_compression(),
            Compression::LeakingLength => codec.with_compression_leaking_length(),
        }
    }
}

/// The default for [`SessionConfig::with_max_form_size`]: a login or settings form with a
/// hidden token field is far smaller; larger uploads are not forms to look into.
pub const DEFAULT_MAX_FORM_SIZE: usize = 16 * 1024;

/// Which source of the session a request's cookie and token parameter are tried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenOrder {
    /// The cookie, then the parameter (TurboGears' `visit.source = 'cookie, form'`).
    CookieFirst,
    /// The parameter, then the cookie (`visit.source = 'form, cookie'`).
    ParameterFirst,
}

/// A name that needs no percent-encoding in a query or a form: what a hidden field's
/// `name` attribute should be.
fn is_plain_field_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// What was asked for about compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    Off,
    Requested,
    LeakingLength,
}

/// Whether `name` starts with a cookie prefix, compared as browsers do: ASCII
/// case-insensitively.
pub(crate) fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// At most 1024 bytes of visible ASCII other than `;` (which would end the attribute).
fn check_attribute(attribute: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > MAX_ATTRIBUTE_LEN {
        return Err(ConfigError::AttributeTooLong {
            attribute,
            len: value.len(),
        });
    }
    if !is_valid_attribute(value) {
        return Err(ConfigError::InvalidAttribute { attribute });
    }
    Ok(())
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("ring", &self.ring)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("partitioned", &self.partitioned)
            .field("persistence", &self.persistence)
            .field("idle", &self.idle)
            .field("lifetime", &self.lifetime)
            .field("touch", &self.touch)
            .field("reissue_older_keys", &self.reissue_older_keys)
            .field("save", &self.save)
            .field("max_size", &self.max_size)
            .field("compression", &self.compression)
            .field("max_cookies", &self.max_cookies)
            .field("max_total", &self.max_total)
            .field("max_session", &self.max_session)
            .field("token", &self.token)
            .field("token_order", &self.token_order)
            .field("max_form", &self.max_form)
            .field("revocation", &self.revocation.as_ref().map(|_| "<fn>"))
            .field("seal_store", &self.seal_store)
            .field("seal_migration", &self.seal_migration)
            .field("observer", &self.observer.as_ref().map(|_| "<observer>"))
            .finish_non_exhaustive()
    }
}
