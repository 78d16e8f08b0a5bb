//! Time as the department keeps it: China Standard Time (UTC+8, no daylight saving).

use chrono::{DateTime, FixedOffset, Utc};

/// UTC+8, the zone of every date the measures speak of.
pub fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

pub fn now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&china())
}
