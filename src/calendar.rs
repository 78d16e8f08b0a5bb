//! Working days: the PRC public-holiday calendar with adjusted working days. (stub: being written)

use chrono::NaiveDate;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "no working-day calendar for {year}: add the year's holidays and adjusted working days under [calendar] in the configuration"
    )]
    NoData { year: i32 },
}

/// Operator overrides (`[calendar]` in the configuration).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarOverrides {
    /// Years whose schedule the overrides fully describe (weekends are rest days, weekdays work days, except as listed).
    #[serde(default)]
    pub years: Vec<i32>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct WorkCalendar {}

impl WorkCalendar {
    /// The built-in PRC calendar.
    pub fn embedded() -> WorkCalendar {
        WorkCalendar {}
    }

    pub fn with_overrides(self, _o: &CalendarOverrides) -> WorkCalendar {
        self
    }

    pub fn is_working_day(&self, _d: NaiveDate) -> Result<bool, CalendarError> {
        Ok(true)
    }

    /// Working days in `from..=to` (both dates counted); 0 when `to < from`.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        Ok((to - from).num_days().max(-1) as u32 + 1)
    }
}
