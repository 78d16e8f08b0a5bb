//! Time as the department keeps it: China Standard Time (UTC+8, no daylight saving).
//!
//! For drills and tests, `DISCLOSE_CLOCK=2026-12-01T22:00:00+08:00` starts the process's clock
//! at that instant; it then runs at the normal pace. Quiet hours, schedules and publicity
//! periods can so be exercised without waiting for the night. The service logs the setting at
//! start-up, so a clock set this way is never a surprise.

use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, Utc};

/// UTC+8, the zone of every date the measures speak of.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// The variable that sets the clock.
pub const CLOCK_ENV: &str = "DISCLOSE_CLOCK";

struct Set {
    start: DateTime<FixedOffset>,
    at: Instant,
}

fn set() -> Option<&'static Set> {
    static SET: OnceLock<Option<Set>> = OnceLock::new();
    SET.get_or_init(|| {
        let raw = std::env::var(CLOCK_ENV).ok()?;
        match DateTime::parse_from_rfc3339(raw.trim()) {
            Ok(start) => Some(Set {
                start: start.with_timezone(&china()),
                at: Instant::now(),
            }),
            Err(e) => {
                // Refusing to start would be worse than running on the real clock; say so loudly.
                tracing::error!(value = %raw, error = %e, "{CLOCK_ENV} is not an RFC 3339 time with offset; using the real clock");
                None
            }
        }
    })
    .as_ref()
}

/// The clock's start when `DISCLOSE_CLOCK` set it, for the start-up log.
pub fn set_to() -> Option<DateTime<FixedOffset>> {
    set().map(|s| s.start)
}

pub fn now() -> DateTime<FixedOffset> {
    match set() {
        Some(s) => {
            s.start + chrono::Duration::from_std(s.at.elapsed()).unwrap_or(chrono::Duration::zero())
        }
        None => Utc::now().with_timezone(&china()),
    }
}
