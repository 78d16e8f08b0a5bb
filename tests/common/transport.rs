//! What the tests of every provider transport share: the engine's clock at a given time, the
//! environment set once per test binary, and readings of outcomes (none of which may show a
//! credential).

use std::sync::Once;

use chrono::{DateTime, FixedOffset};
use disclose::channels::Outcome;

/// An RFC 3339 time as the engine's clock.
pub fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// Set the variables the channels read their credentials from, once per test binary, before
/// any channel reads them (each test calls this first, so no other thread reads the environment
/// meanwhile; every test of a binary passes the same variables).
pub fn set_env_once(vars: &[(&str, &str)]) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (k, v) in vars {
            // SAFETY: before any thread of this binary reads the environment (see above).
            unsafe { std::env::set_var(k, v) };
        }
    });
}

/// None of `secrets` (credentials, the signature's algorithm or header parts) in anything the
/// channel reports.
pub fn assert_none_of(secrets: &[&str], outcomes: &[Outcome]) {
    let text = format!("{outcomes:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "{secret} leaked into {text}");
    }
}

/// What a test expects of an outcome.
pub type Expect = fn(&Outcome) -> bool;

/// The reference of a delivered outcome.
pub fn delivered(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Delivered { reference } => reference.as_deref(),
        _ => None,
    }
}

/// The code and permanence of a failed outcome.
pub fn failed(o: &Outcome) -> Option<(&str, bool)> {
    match o {
        Outcome::Failed {
            code, permanent, ..
        } => Some((code.as_str(), *permanent)),
        _ => None,
    }
}
