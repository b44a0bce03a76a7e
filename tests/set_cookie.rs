//! `Set-Cookie` rendering (every attribute, Max-Age, Expires) and every configuration error.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use cookie_session::{
    ConfigError, CookieAction, Mode, Persistence, SameSite, SessionConfig, Sessions,
};

fn set_cookie(sessions: &Sessions, now: i64) -> String {
    let mut session = sessions.load([], at(now));
    session.insert("user_id", &7).unwrap();
    match session.finish(at(now)).unwrap().cookie {
        CookieAction::Set(header) => header,
        other => panic!("{other:?}"),
    }
}

fn removal(sessions: &Sessions) -> String {
    let header = set_cookie(sessions, T0);
    let pair = header.split(';').next().unwrap().to_owned();
    let mut session = sessions.load([pair.as_str()], at(T0));
    session.delete();
    match session.finish(at(T0)).unwrap().cookie {
        CookieAction::Remove(header) => header,
        other => panic!("{other:?}"),
    }
}

/// The attributes after `name=value`, as written.
fn attributes(header: &str) -> Vec<&str> {
    header.split("; ").skip(1).collect()
}

#[test]
fn the_defaults_are_secure_host_only_lax_and_a_browser_session_cookie() {
    let sessions = SessionConfig::new(Mode::Signed, cookie_session::KeyRing::new(key(1)))
        .build()
        .unwrap();
    assert_eq!(sessions.name(), "__Host-session");
    let header = set_cookie(&sessions, T0);
    assert!(header.starts_with("__Host-session="));
    assert_eq!(
        attributes(&header),
        ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"]
    );
}

#[test]
fn a_persistent_cookie_gets_max_age_and_expires_from_the_authenticated_deadline() {
    let sessions = config(Mode::Signed)
        .with_persistence(Persistence::Persistent)
        .build()
        .unwrap();
    let header = set_cookie(&sessions, T0);
    let attrs = attributes(&header);
    assert!(attrs.contains(&"Max-Age=1200"), "{header}");
    // 2026-01-01T00:20:00Z as an RFC 7231 IMF-fixdate.
    assert!(
        attrs.contains(&"Expires=Thu, 01 Jan 2026 00:20:00 GMT"),
        "{header}"
    );
}

#[test]
fn max_age_never_exceeds_the_absolute_deadline_nor_400_days() {
    let short = config(Mode::Signed)
        .with_persistence(Persistence::Persistent)
        .with_idle_timeout(Duration::from_secs(3600))
        .with_lifetime(Duration::from_secs(900))
        .build()
        .unwrap();
    assert!(attributes(&set_cookie(&short, T0)).contains(&"Max-Age=900"));

    let long = config(Mode::Signed)
        .with_persistence(Persistence::Persistent)
        .with_idle_timeout(Duration::from_secs(500 * 86_400))
        .with_lifetime(Duration::from_secs(600 * 86_400))
        .build()
        .unwrap();
    let header = set_cookie(&long, T0);
    assert!(
        attributes(&header).contains(&"Max-Age=34560000"),
        "{header}"
    );
    // 2026-01-01 + 400 days = 2027-02-05.
    assert!(
        attributes(&header).contains(&"Expires=Fri, 05 Feb 2027 00:00:00 GMT"),
        "{header}"
    );
}

#[test]
fn every_attribute_renders() {
    let sessions = config(Mode::Signed)
        .with_name("__Secure-sid")
        .with_path("/app")
        .with_domain("example.com")
        .with_same_site(SameSite::None)
        .with_partitioned(true)
        .with_http_only(false)
        .build()
        .unwrap();
    let header = set_cookie(&sessions, T0);
    assert!(header.starts_with("__Secure-sid="));
    assert_eq!(
        attributes(&header),
        [
            "SameSite=None",
            "Partitioned",
            "Secure",
            "Path=/app",
            "Domain=example.com"
        ]
    );
    let strict = config(Mode::Signed)
        .with_same_site(SameSite::Strict)
        .build()
        .unwrap();
    assert!(attributes(&set_cookie(&strict, T0)).contains(&"SameSite=Strict"));
}

#[test]
fn the_insecure_development_opt_out_drops_secure_only() {
    let sessions = config(Mode::Signed)
        .with_insecure_http_for_local_development()
        .build()
        .unwrap();
    let header = set_cookie(&sessions, T0);
    assert_eq!(attributes(&header), ["HttpOnly", "SameSite=Lax", "Path=/"]);
}

#[test]
fn a_removal_matches_the_stored_cookie_and_expires_it_both_ways() {
    let sessions = config(Mode::Signed)
        .with_name("__Secure-sid")
        .with_path("/app")
        .with_domain("example.com")
        .with_same_site(SameSite::None)
        .with_partitioned(true)
        .with_persistence(Persistence::Persistent)
        .build()
        .unwrap();
    let header = removal(&sessions);
    assert_eq!(
        header,
        "__Secure-sid=; HttpOnly; SameSite=None; Partitioned; Secure; Path=/app; Domain=example.com; \
         Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
}

#[test]
fn rendered_headers_parse_back_with_the_same_value() {
    // An independent parser (the cookie crate's) reads back what was written.
    let sessions = config(Mode::Encrypted)
        .with_persistence(Persistence::Persistent)
        .build()
        .unwrap();
    let header = set_cookie(&sessions, T0);
    let parsed = cookie::Cookie::parse(header.as_str()).unwrap();
    assert_eq!(parsed.name(), "sid");
    assert_eq!(parsed.secure(), Some(true));
    assert_eq!(parsed.max_age(), Some(time::Duration::seconds(1200)));
    let session = sessions.load([format!("sid={}", parsed.value()).as_str()], at(T0 + 1));
    assert_eq!(session.get::<u32>("user_id").unwrap(), Some(7));
}

fn build_err(config: SessionConfig) -> ConfigError {
    config.build().unwrap_err()
}

/// Security review, item 5: browsers match the prefixes case-insensitively, so must `build`.
#[test]
fn cookie_prefixes_are_recognised_in_any_case() {
    let c = || config(Mode::Signed);
    for name in ["__HOST-sid", "__host-sid", "__Host-sid", "__hOsT-sid"] {
        assert_eq!(
            build_err(c().with_name(name).with_domain("example.com")),
            ConfigError::HostPrefixForbidsDomain,
            "{name}"
        );
        assert_eq!(
            build_err(c().with_name(name).with_path("/app")),
            ConfigError::HostPrefixRequiresRootPath,
            "{name}"
        );
    }
    for name in ["__secure-sid", "__SECURE-sid", "__HOST-sid"] {
        assert!(
            matches!(
                build_err(
                    c().with_name(name)
                        .with_insecure_http_for_local_development()
                ),
                ConfigError::PrefixRequiresSecure { .. }
            ),
            "{name}"
        );
    }
    // Near misses are ordinary names.
    assert!(
        c().with_name("__Hostx-sid")
            .with_domain("example.com")
            .build()
            .is_ok()
    );
    assert!(
        c().with_name("_Host-sid")
            .with_domain("example.com")
            .build()
            .is_ok()
    );
}

#[test]
fn every_configuration_error() {
    let c = || config(Mode::Signed);
    assert_eq!(build_err(c().with_name("")), ConfigError::InvalidName);
    assert_eq!(build_err(c().with_name("a b")), ConfigError::InvalidName);
    assert_eq!(
        build_err(
            c().with_name("__Host-x")
                .with_insecure_http_for_local_development()
        ),
        ConfigError::PrefixRequiresSecure { prefix: "__Host-" }
    );
    assert_eq!(
        build_err(
            c().with_name("__Secure-x")
                .with_insecure_http_for_local_development()
        ),
        ConfigError::PrefixRequiresSecure {
            prefix: "__Secure-"
        }
    );
    assert_eq!(
        build_err(c().with_name("__Host-x").with_path("/app")),
        ConfigError::HostPrefixRequiresRootPath
    );
    assert_eq!(
        build_err(c().with_name("__Host-x").with_domain("example.com")),
        ConfigError::HostPrefixForbidsDomain
    );
    assert_eq!(
        build_err(
            c().with_same_site(SameSite::None)
                .with_insecure_http_for_local_development()
        ),
        ConfigError::SameSiteNoneRequiresSecure
    );
    assert_eq!(
        build_err(
            c().with_partitioned(true)
                .with_insecure_http_for_local_development()
        ),
        ConfigError::PartitionedRequiresSecure
    );
    let long = format!("/{}", "p".repeat(1024));
    assert_eq!(
        build_err(c().with_path(long)),
        ConfigError::AttributeTooLong {
            attribute: "Path",
            len: 1025
        }
    );
    let long_domain = format!("{}.com", "d".repeat(1021));
    assert_eq!(
        build_err(c().with_domain(long_domain)),
        ConfigError::AttributeTooLong {
            attribute: "Domain",
            len: 1025
        }
    );
    assert!(
        c().with_path(format!("/{}", "p".repeat(1023)))
            .build()
            .is_ok(),
        "exactly 1024 is fine"
    );
    assert_eq!(
        build_err(c().with_path("app")),
        ConfigError::InvalidAttribute { attribute: "Path" }
    );
    assert_eq!(
        build_err(c().with_path("/a;b")),
        ConfigError::InvalidAttribute { attribute: "Path" }
    );
    assert_eq!(
        build_err(c().with_domain("ex ample.com")),
        ConfigError::InvalidAttribute {
            attribute: "Domain"
        }
    );
    assert_eq!(
        build_err(c().with_touch_policy(cookie_session::TouchPolicy::Renew { after_percent: 0 })),
        ConfigError::InvalidRenewThreshold(0)
    );
    assert_eq!(
        build_err(c().with_touch_policy(cookie_session::TouchPolicy::Renew { after_percent: 101 })),
        ConfigError::InvalidRenewThreshold(101)
    );
    assert_eq!(
        build_err(c().with_idle_timeout(Duration::ZERO)),
        ConfigError::ZeroDuration
    );
    assert_eq!(
        build_err(c().with_lifetime(Duration::from_millis(500))),
        ConfigError::ZeroDuration
    );
}

#[test]
fn configuration_errors_say_what_to_do_in_lowercase() {
    let errors = [
        ConfigError::PrefixRequiresSecure { prefix: "__Host-" },
        ConfigError::HostPrefixRequiresRootPath,
        ConfigError::HostPrefixForbidsDomain,
        ConfigError::AttributeTooLong {
            attribute: "Path",
            len: 2000,
        },
    ];
    for e in errors {
        let msg = e.to_string();
        assert!(!msg.ends_with('.'), "{msg}");
        assert!(msg.contains("use ") || msg.contains("1024"), "{msg}");
    }
}
