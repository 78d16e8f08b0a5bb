//! The pace of delivery towards people: quiet hours per channel and per-recipient limits, so
//! that no citizen is woken at night or flooded by one department's notices.
//!
//! Both are the engine's business, not the providers': a provider's own per-number limits
//! (Alibaba: 50 notices a day per number; Tencent: 10 a natural day, providers.md §1.9, §2.7)
//! reject what is over them, and WeCom silently discards what goes over 30 a minute or 1,000 an
//! hour per member (§4.3) — silently, so the engine must never get there. What is over a limit
//! or inside quiet hours is deferred, never dropped.
//!
//! The account's own call rate (`calls_per_second`) is a `governor` limiter in the engine. The
//! per-recipient limits are counted here in natural windows, as the providers count them (a
//! smooth `governor` quota of n a day would let through up to 2n-1 in some 24 hours), keyed by a
//! 64-bit hash of the address: a notice to a million subscribers keeps a million keys, about
//! 20 bytes each.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveTime, Timelike};
use serde::Deserialize;

/// A daily window in China Standard Time during which a channel sends nothing, e.g. SMS
/// 21:00–08:00. `from` may be later than `to` (the window spans midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl<'de> Deserialize<'de> for QuietHours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            from: String,
            to: String,
        }
        let raw = Raw::deserialize(d)?;
        let parse = |s: &str, which: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| {
                serde::de::Error::custom(format!(
                    "quiet_hours.{which} {s:?} is not a time of day like \"21:00\""
                ))
            })
        };
        let q = QuietHours {
            from: parse(&raw.from, "from")?,
            to: parse(&raw.to, "to")?,
        };
        if q.from == q.to {
            return Err(serde::de::Error::custom(
                "quiet_hours.from and quiet_hours.to are the same time; leave quiet_hours out for none",
            ));
        }
        Ok(q)
    }
}

impl QuietHours {
    /// Whether `now` (any offset; judged in UTC+8) falls in the window.
    pub fn contains(&self, now: DateTime<FixedOffset>) -> bool {
        let t = now.with_timezone(&crate::clock::china()).time();
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }

    /// When the window that holds `now` ends (the next `to`); `now` itself when outside it.
    pub fn ends(&self, now: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        if !self.contains(now) {
            return now;
        }
        let local = now.with_timezone(&crate::clock::china());
        let today = local
            .with_hour(self.to.hour())
            .and_then(|d| d.with_minute(self.to.minute()))
            .and_then(|d| d.with_second(0))
            .and_then(|d| d.with_nanosecond(0))
            .unwrap_or(local);
        if today > local {
            today
        } else {
            today + chrono::Duration::days(1)
        }
    }
}

impl std::fmt::Display for QuietHours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}–{}",
            self.from.format("%H:%M"),
            self.to.format("%H:%M")
        )
    }
}

/// How many messages one recipient (one address) may get on a channel per minute, per hour and
/// per day. Each left out is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientLimits {
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
}

impl RecipientLimits {
    pub fn validate(&self) -> Vec<String> {
        [
            ("per_minute", self.per_minute),
            ("per_hour", self.per_hour),
            ("per_day", self.per_day),
        ]
        .into_iter()
        .filter(|(_, v)| *v == Some(0))
        .map(|(k, _)| {
            format!("recipient_limits.{k} must be at least 1 (leave it out for no limit)")
        })
        .collect()
    }

    pub(crate) fn windows(&self) -> Vec<(u32, u32)> {
        [
            (60, self.per_minute),
            (3_600, self.per_hour),
            (86_400, self.per_day),
        ]
        .into_iter()
        .filter_map(|(secs, n)| n.map(|n| (secs, n)))
        .collect()
    }
}

/// Per-recipient limiter: a count per address in the current natural minute, hour and day
/// (UTC+8), the windows in which the providers count (providers.md §1.9, §2.7). A recipient never
/// gets more than `n` in one window; what is over waits for the next window.
pub struct RecipientLimiter {
    /// (window length in seconds, messages per window)
    pub(crate) windows: Vec<(u32, u32)>,
    cells: Mutex<HashMap<u64, Cell>>,
    hasher: std::hash::RandomState,
}

/// One recipient: for each window, which one (its index since the epoch) and how many so far.
#[derive(Clone, Copy, Default)]
struct Cell {
    window: [u32; 3],
    count: [u16; 3],
}

/// Natural days begin at midnight China Standard Time.
pub(crate) const CHINA_MS: i64 = 8 * 3_600_000;

impl RecipientLimiter {
    /// `None` when no limit is set.
    pub fn new(limits: &RecipientLimits) -> Option<RecipientLimiter> {
        let windows = limits.windows();
        (!windows.is_empty()).then(|| RecipientLimiter {
            windows,
            cells: Mutex::new(HashMap::new()),
            hasher: std::hash::RandomState::new(),
        })
    }

    fn key(&self, address: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(address.as_bytes());
        h.finish()
    }

    /// Take one message for each address if every window allows it. Returns, per address in
    /// order, `None` (taken) or the wait until the window that allows it. An address appearing
    /// twice in one call is counted twice.
    pub fn take(&self, addresses: &[&str], now_ms: i64) -> Vec<Option<Duration>> {
        let local = now_ms + CHINA_MS;
        let current: Vec<(u32, u32, i64)> = self
            .windows
            .iter()
            .map(|&(secs, n)| {
                let len = secs as i64 * 1000;
                let idx = local.div_euclid(len);
                (idx as u32, n, (idx + 1) * len - local)
            })
            .collect();
        let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
        let out = addresses
            .iter()
            .map(|a| {
                let cell = cells.entry(self.key(a)).or_default();
                let mut wait = 0i64;
                for (i, &(idx, n, rest)) in current.iter().enumerate() {
                    if cell.window[i] != idx {
                        cell.window[i] = idx;
                        cell.count[i] = 0;
                    }
                    if u32::from(cell.count[i]) >= n {
                        wait = wait.max(rest);
                    }
                }
                if wait > 0 {
                    return Some(Duration::from_millis(wait as u64));
                }
                for c in &mut cell.count[..current.len()] {
                    *c = c.saturating_add(1);
                }
                None
            })
            .collect();
        // Forget recipients whose longest window has passed, so that the map does not grow
        // without end in a long-running service.
        if cells.len() >= 100_000 && cells.len().is_power_of_two() {
            let last = current.len() - 1;
            let idx = current[last].0;
            cells.retain(|_, c| c.window[last] == idx);
        }
        out
    }

    /// Recipients currently remembered (for tests and figures).
    pub fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    fn quiet(from: &str, to: &str) -> QuietHours {
        toml::from_str::<HashMap<String, QuietHours>>(&format!(
            "q = {{ from = \"{from}\", to = \"{to}\" }}"
        ))
        .unwrap()["q"]
    }

    #[test]
    fn quiet_hours_across_midnight() {
        let q = quiet("21:00", "08:00");
        assert!(!q.contains(at("2026-12-01T20:59:59+08:00")));
        assert!(q.contains(at("2026-12-01T21:00:00+08:00")));
        assert!(q.contains(at("2026-12-02T03:00:00+08:00")));
        assert!(!q.contains(at("2026-12-02T08:00:00+08:00")));
        // Judged in UTC+8 whatever the offset of the instant.
        assert!(q.contains(at("2026-12-01T14:00:00+00:00")));
        assert_eq!(
            q.ends(at("2026-12-01T22:30:00+08:00")),
            at("2026-12-02T08:00:00+08:00")
        );
        assert_eq!(
            q.ends(at("2026-12-02T07:00:00+08:00")),
            at("2026-12-02T08:00:00+08:00")
        );
        assert_eq!(
            q.ends(at("2026-12-02T12:00:00+08:00")),
            at("2026-12-02T12:00:00+08:00")
        );
    }

    #[test]
    fn quiet_hours_within_a_day_and_bad_values() {
        let q = quiet("12:00", "13:30");
        assert!(q.contains(at("2026-12-01T13:29:00+08:00")));
        assert!(!q.contains(at("2026-12-01T13:30:00+08:00")));
        let e =
            toml::from_str::<HashMap<String, QuietHours>>("q = { from = \"9pm\", to = \"08:00\" }")
                .unwrap_err();
        assert!(
            e.to_string().contains("\"9pm\" is not a time of day"),
            "{e}"
        );
        let e = toml::from_str::<HashMap<String, QuietHours>>(
            "q = { from = \"08:00\", to = \"08:00\" }",
        )
        .unwrap_err();
        assert!(e.to_string().contains("the same time"), "{e}");
    }

    #[test]
    fn a_recipient_gets_at_most_n_per_natural_window() {
        let limits = RecipientLimits {
            per_minute: Some(1),
            per_hour: Some(3),
            per_day: Some(4),
        };
        // 2026-12-01 09:00:10 UTC+8
        let t0 = at("2026-12-01T09:00:10+08:00").timestamp_millis();
        let l = RecipientLimiter::new(&limits).unwrap();
        let a = "+8613800000001";
        assert_eq!(l.take(&[a], t0), vec![None]);
        // Same minute: wait for the next one.
        assert_eq!(
            l.take(&[a], t0 + 10_000),
            vec![Some(Duration::from_secs(40))]
        );
        // Others are not held up by one recipient.
        assert_eq!(l.take(&["+8613800000002"], t0 + 10_000), vec![None]);
        // One a minute, until the hour's three are used up; then the next hour.
        assert_eq!(l.take(&[a], t0 + 60_000), vec![None]);
        assert_eq!(l.take(&[a], t0 + 120_000), vec![None]);
        let w = l.take(&[a], t0 + 180_000)[0].unwrap();
        assert_eq!(w, Duration::from_secs(3600 - 190));
        // The fourth of the day in the next hour; the fifth waits for midnight UTC+8.
        let ten = at("2026-12-01T10:00:00+08:00").timestamp_millis();
        assert_eq!(l.take(&[a], ten), vec![None]);
        let w = l.take(&[a], ten + 3_600_000)[0].unwrap();
        assert_eq!(w, Duration::from_secs(13 * 3600));
        let midnight = at("2026-12-02T00:00:00+08:00").timestamp_millis();
        assert_eq!(l.take(&[a], midnight), vec![None]);
        // Twice in one call counts twice.
        let b = "+8613800000003";
        assert_eq!(l.take(&[b, b], t0)[1], Some(Duration::from_secs(50)));
        assert_eq!(l.len(), 3);
    }

    #[test]
    fn no_limits_no_limiter_and_zero_is_refused() {
        assert!(RecipientLimiter::new(&RecipientLimits::default()).is_none());
        let bad = RecipientLimits {
            per_minute: Some(0),
            per_hour: None,
            per_day: Some(0),
        };
        assert_eq!(bad.validate().len(), 2);
    }
}
