//! Working days: the PRC public-holiday calendar with adjusted working days.
//!
//! Time limits in the measures are counted in working days (a 6.3 publicity period lasts at least
//! five), and a Chinese working day is not "Monday to Friday": the State Council publishes each
//! year which weekdays are public holidays (法定节假日) and which weekend days become working days
//! (调休上班). This module owns that schedule. The published notices live in `calendar_cn.toml`,
//! compiled into the binary; operators can correct them or describe a year whose notice is not in
//! the data yet under `[calendar]` in the configuration.
//!
//! A year the calendar does not know is an error, never a guess: counting a holiday week as
//! working days would shorten a publicity period below what the rules require.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "no working-day calendar for {year}: add the year's holidays and adjusted working days under [calendar] in the configuration"
    )]
    NoData { year: i32 },
}

/// Operator overrides (`[calendar]` in the configuration).
///
/// Listed dates win over the embedded data. A date listed both as a holiday and as a workday is
/// a holiday: when in doubt the calendar counts fewer working days, so a period it approves is
/// never shorter than required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarOverrides {
    /// Years whose schedule the overrides fully describe (weekends are rest days, weekdays work days, except as listed).
    #[serde(default)]
    pub years: Vec<i32>,
    #[serde(default, deserialize_with = "toml_date::list")]
    pub holidays: Vec<NaiveDate>,
    #[serde(default, deserialize_with = "toml_date::list")]
    pub workdays: Vec<NaiveDate>,
}

/// What kind of day a date is, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayKind {
    /// An ordinary Monday to Friday.
    Workday,
    /// An ordinary Saturday or Sunday.
    Weekend,
    /// A public holiday or a rest day of its bridged period (e.g. "春节").
    Holiday(String),
    /// A weekend day worked in exchange for a holiday (e.g. "春节").
    AdjustedWorkday(String),
}

impl DayKind {
    pub fn is_working_day(&self) -> bool {
        matches!(self, DayKind::Workday | DayKind::AdjustedWorkday(_))
    }
}

/// The name given to holidays and workdays that come from the configuration, which has none.
const CONFIGURED: &str = "configured";

#[derive(Debug, Clone)]
pub struct WorkCalendar {
    /// Years whose schedule is known; any other year is `NoData`.
    years: BTreeSet<i32>,
    /// Exceptions to the weekend rule: holidays on any day, working days on weekends.
    special: BTreeMap<NaiveDate, DayKind>,
}

impl WorkCalendar {
    /// The built-in PRC calendar.
    ///
    /// The data is parsed once per process. It is compiled in and checked by this module's
    /// tests, so a parse failure is a build defect and panics at start-up.
    pub fn embedded() -> WorkCalendar {
        static EMBEDDED: OnceLock<WorkCalendar> = OnceLock::new();
        EMBEDDED
            .get_or_init(|| {
                WorkCalendar::from_toml(include_str!("calendar_cn.toml"))
                    .unwrap_or_else(|e| panic!("src/calendar_cn.toml: {e}"))
            })
            .clone()
    }

    /// Apply the operator's `[calendar]` overrides.
    ///
    /// A year in `overrides.years` replaces the embedded schedule for that year entirely. Listed
    /// dates in years that stay unknown change nothing: those years remain `NoData`.
    pub fn with_overrides(mut self, o: &CalendarOverrides) -> WorkCalendar {
        for &year in &o.years {
            self.special.retain(|d, _| d.year() != year);
            self.years.insert(year);
        }
        for &d in &o.workdays {
            self.special
                .insert(d, DayKind::AdjustedWorkday(CONFIGURED.into()));
        }
        // Holidays last, so that they win over a workday listed for the same date.
        for &d in &o.holidays {
            if !matches!(self.special.get(&d), Some(DayKind::Holiday(_))) {
                self.special.insert(d, DayKind::Holiday(CONFIGURED.into()));
            }
        }
        self
    }

    /// The years this calendar can answer for, in order.
    pub fn known_years(&self) -> Vec<i32> {
        self.years.iter().copied().collect()
    }

    /// What kind of day `d` is.
    pub fn kind(&self, d: NaiveDate) -> Result<DayKind, CalendarError> {
        if !self.years.contains(&d.year()) {
            return Err(CalendarError::NoData { year: d.year() });
        }
        if let Some(kind) = self.special.get(&d) {
            return Ok(kind.clone());
        }
        Ok(match d.weekday() {
            Weekday::Sat | Weekday::Sun => DayKind::Weekend,
            _ => DayKind::Workday,
        })
    }

    pub fn is_working_day(&self, d: NaiveDate) -> Result<bool, CalendarError> {
        Ok(self.kind(d)?.is_working_day())
    }

    /// Working days in `from..=to` (both dates counted); 0 when `to < from`.
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0;
        // Every day is looked at, so the first day of an unknown year stops the walk.
        for d in from.iter_days().take_while(|d| *d <= to) {
            if self.is_working_day(d)? {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The `n`-th working day starting at `from`, which is day 1 if it is a working day.
    ///
    /// `n = 5` from a Monday in an ordinary week is that Friday: the last day of a five-working-day
    /// period that starts on `from`. `n = 0` returns `from`.
    pub fn add_working_days(&self, from: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        if n == 0 {
            return Ok(from);
        }
        let mut seen = 0;
        // The walk ends at the latest on the first day of an unknown year.
        for d in from.iter_days() {
            if self.is_working_day(d)? {
                seen += 1;
                if seen == n {
                    return Ok(d);
                }
            }
        }
        // iter_days only ends at NaiveDate::MAX, far beyond any known year.
        Err(CalendarError::NoData {
            year: NaiveDate::MAX.year(),
        })
    }

    fn from_toml(text: &str) -> Result<WorkCalendar, String> {
        let data: DataFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut cal = WorkCalendar {
            years: BTreeSet::new(),
            special: BTreeMap::new(),
        };
        for y in data.year {
            if !cal.years.insert(y.year) {
                return Err(format!("year {} is listed twice", y.year));
            }
            let in_year = |d: NaiveDate| {
                if d.year() == y.year {
                    Ok(d)
                } else {
                    Err(format!("{d} is listed under year {}", y.year))
                }
            };
            for h in &y.holidays {
                if h.to < h.from {
                    return Err(format!("{}: {} ends before it starts", y.year, h.name));
                }
                for d in in_year(h.from)?.iter_days().take_while(|d| *d <= h.to) {
                    let previous = cal
                        .special
                        .insert(in_year(d)?, DayKind::Holiday(h.name.clone()));
                    if previous.is_some() {
                        return Err(format!("{d} is listed twice"));
                    }
                }
            }
            for w in &y.workdays {
                let d = in_year(w.date)?;
                if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                    return Err(format!("{d} ({}) is not a weekend day", w.name));
                }
                let previous = cal
                    .special
                    .insert(d, DayKind::AdjustedWorkday(w.name.clone()));
                if previous.is_some() {
                    return Err(format!("{d} is listed twice"));
                }
            }
        }
        Ok(cal)
    }
}

/// `calendar_cn.toml`: one `[[year]]` per State Council notice.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    year: Vec<YearData>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearData {
    year: i32,
    /// The notice the dates were taken from; for reviewers, not used.
    #[allow(dead_code)]
    source: String,
    holidays: Vec<HolidayPeriod>,
    workdays: Vec<AdjustedWorkday>,
}

/// A rest period as the notice states it: `from` to `to`, both days included.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayPeriod {
    name: String,
    #[serde(deserialize_with = "toml_date::one")]
    from: NaiveDate,
    #[serde(deserialize_with = "toml_date::one")]
    to: NaiveDate,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdjustedWorkday {
    name: String,
    #[serde(deserialize_with = "toml_date::one")]
    date: NaiveDate,
}

/// Dates written the TOML way (`2026-10-01`) reach serde as a TOML datetime, a map, which
/// chrono's own `Deserialize` refuses; a quoted `"2026-10-01"` arrives as a string. Both are
/// accepted, and anything with a time of day or an offset is refused: a day is a day.
mod toml_date {
    use std::fmt;

    use chrono::NaiveDate;
    use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        d.deserialize_any(DateVisitor)
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NaiveDate>, D::Error> {
        Ok(Vec::<Date>::deserialize(d)?
            .into_iter()
            .map(|x| x.0)
            .collect())
    }

    struct Date(NaiveDate);

    impl<'de> Deserialize<'de> for Date {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            one(d).map(Date)
        }
    }

    struct DateVisitor;

    impl<'de> Visitor<'de> for DateVisitor {
        type Value = NaiveDate;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date such as 2026-10-01")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<NaiveDate, E> {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|e| E::custom(format!("{s:?} is not a date such as 2026-10-01: {e}")))
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NaiveDate, A::Error> {
            let dt =
                toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
            match (dt.date, dt.time, dt.offset) {
                (Some(date), None, None) => NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                )
                .ok_or_else(|| de::Error::custom(format!("{dt} is not a calendar date"))),
                _ => Err(de::Error::custom(format!(
                    "{dt} is not a plain date: give the day only, such as 2026-10-01"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn embedded_data_parses_and_covers_2024_to_2026() {
        assert_eq!(
            WorkCalendar::embedded().known_years(),
            vec![2024, 2025, 2026]
        );
    }

    #[test]
    fn an_adjusted_working_day_on_a_saturday_is_a_working_day() {
        let cal = WorkCalendar::embedded();
        assert_eq!(d(2026, 2, 14).weekday(), Weekday::Sat);
        assert!(cal.is_working_day(d(2026, 2, 14)).unwrap());
        assert_eq!(
            cal.kind(d(2026, 2, 14)).unwrap(),
            DayKind::AdjustedWorkday("春节".into())
        );
        // The Saturday before it is an ordinary weekend day.
        assert!(!cal.is_working_day(d(2026, 2, 7)).unwrap());
        assert_eq!(cal.kind(d(2026, 2, 7)).unwrap(), DayKind::Weekend);
    }

    #[test]
    fn a_holiday_on_a_weekday_is_not_a_working_day() {
        let cal = WorkCalendar::embedded();
        assert_eq!(d(2026, 10, 5).weekday(), Weekday::Mon);
        assert!(!cal.is_working_day(d(2026, 10, 5)).unwrap());
        assert_eq!(
            cal.kind(d(2026, 10, 5)).unwrap(),
            DayKind::Holiday("国庆节".into())
        );
        assert_eq!(cal.kind(d(2026, 10, 8)).unwrap(), DayKind::Workday);
    }

    #[test]
    fn the_2026_schedule_matches_the_notice() {
        let cal = WorkCalendar::embedded();
        let holidays = [
            (d(2026, 1, 1), d(2026, 1, 3)),
            (d(2026, 2, 15), d(2026, 2, 23)),
            (d(2026, 4, 4), d(2026, 4, 6)),
            (d(2026, 5, 1), d(2026, 5, 5)),
            (d(2026, 6, 19), d(2026, 6, 21)),
            (d(2026, 9, 25), d(2026, 9, 27)),
            (d(2026, 10, 1), d(2026, 10, 7)),
        ];
        for (from, to) in holidays {
            assert_eq!(
                cal.working_days_between(from, to).unwrap(),
                0,
                "{from}..={to}"
            );
            // The days either side of each rest period are working days or plain weekends.
            for edge in [from.pred_opt().unwrap(), to.succ_opt().unwrap()] {
                assert!(
                    !matches!(cal.kind(edge).unwrap(), DayKind::Holiday(_)),
                    "{edge}"
                );
            }
        }
        for w in [
            d(2026, 1, 4),
            d(2026, 2, 14),
            d(2026, 2, 28),
            d(2026, 5, 9),
            d(2026, 9, 20),
            d(2026, 10, 10),
        ] {
            assert!(
                matches!(cal.kind(w).unwrap(), DayKind::AdjustedWorkday(_)),
                "{w}"
            );
        }
    }

    #[test]
    fn working_days_in_each_year_match_an_independent_count() {
        // Weekdays, minus holidays that fall on weekdays, plus adjusted working days, counted by
        // hand from the notices: 2024: 262 - 19 + 8; 2025: 261 - 18 + 5; 2026: 261 - 19 + 6.
        let cal = WorkCalendar::embedded();
        let count = |y| cal.working_days_between(d(y, 1, 1), d(y, 12, 31)).unwrap();
        assert_eq!(count(2024), 251);
        assert_eq!(count(2025), 248);
        assert_eq!(count(2026), 248);
    }

    #[test]
    fn national_day_week_counts_only_the_working_days_around_it() {
        let cal = WorkCalendar::embedded();
        // Mon 28 Sep – Sun 11 Oct 2026: 28, 29, 30 Sep; 8, 9 Oct; Sat 10 Oct (adjusted).
        assert_eq!(
            cal.working_days_between(d(2026, 9, 28), d(2026, 10, 11))
                .unwrap(),
            6
        );
        // 2025: 29, 30 Sep; the holiday runs 1–8 Oct; 9, 10 Oct; Sat 11 Oct (adjusted).
        assert_eq!(
            cal.working_days_between(d(2025, 9, 29), d(2025, 10, 12))
                .unwrap(),
            5
        );
    }

    #[test]
    fn spring_festival_counts_the_adjusted_saturdays() {
        let cal = WorkCalendar::embedded();
        // Mon 9 Feb – Sun 1 Mar 2026: 9–13 Feb (5), Sat 14 Feb, 24–27 Feb (4), Sat 28 Feb.
        assert_eq!(
            cal.working_days_between(d(2026, 2, 9), d(2026, 3, 1))
                .unwrap(),
            11
        );
    }

    #[test]
    fn a_five_working_day_publicity_period() {
        let cal = WorkCalendar::embedded();
        assert_eq!(
            cal.working_days_between(d(2026, 11, 30), d(2026, 12, 4))
                .unwrap(),
            5
        );
        assert_eq!(
            cal.add_working_days(d(2026, 11, 30), 5).unwrap(),
            d(2026, 12, 4)
        );
        // From Wed 30 Sep 2026: 30 Sep, 8 Oct, 9 Oct, Sat 10 Oct (adjusted), Mon 12 Oct.
        assert_eq!(
            cal.add_working_days(d(2026, 9, 30), 5).unwrap(),
            d(2026, 10, 12)
        );
        assert_eq!(
            cal.working_days_between(d(2026, 9, 30), d(2026, 10, 12))
                .unwrap(),
            5
        );
        // A start on a rest day does not count it.
        assert_eq!(
            cal.add_working_days(d(2026, 2, 15), 1).unwrap(),
            d(2026, 2, 24)
        );
        assert_eq!(
            cal.add_working_days(d(2026, 2, 15), 0).unwrap(),
            d(2026, 2, 15)
        );
    }

    #[test]
    fn counting_is_zero_when_the_range_is_reversed_and_inclusive_otherwise() {
        let cal = WorkCalendar::embedded();
        assert_eq!(
            cal.working_days_between(d(2026, 12, 4), d(2026, 11, 30))
                .unwrap(),
            0
        );
        assert_eq!(
            cal.working_days_between(d(2026, 12, 4), d(2026, 12, 4))
                .unwrap(),
            1
        );
        assert_eq!(
            cal.working_days_between(d(2026, 12, 5), d(2026, 12, 5))
                .unwrap(),
            0
        );
        // Across a year boundary: Wed 31 Dec 2025, then 1–3 Jan rest, Sun 4 Jan worked.
        assert_eq!(
            cal.working_days_between(d(2025, 12, 31), d(2026, 1, 4))
                .unwrap(),
            2
        );
    }

    #[test]
    fn an_unknown_year_is_no_data_with_a_fix_in_the_message() {
        let cal = WorkCalendar::embedded();
        let err = cal.is_working_day(d(2027, 3, 1)).unwrap_err();
        assert_eq!(err, CalendarError::NoData { year: 2027 });
        let msg = err.to_string();
        assert!(msg.contains("2027"), "{msg}");
        assert!(
            msg.contains("[calendar]") && msg.contains("configuration"),
            "{msg}"
        );
        // A range that runs into the unknown year fails rather than guessing.
        assert_eq!(
            cal.working_days_between(d(2026, 12, 28), d(2027, 1, 8)),
            Err(CalendarError::NoData { year: 2027 })
        );
        assert_eq!(
            cal.add_working_days(d(2026, 12, 28), 10),
            Err(CalendarError::NoData { year: 2027 })
        );
        assert_eq!(
            cal.is_working_day(d(2023, 12, 29)),
            Err(CalendarError::NoData { year: 2023 })
        );
    }

    #[test]
    fn overrides_make_a_year_known_and_add_holidays() {
        let o: CalendarOverrides = toml::from_str(
            "years = [2027]\nholidays = [2027-01-01, 2026-12-31]\nworkdays = [2027-01-02]\n",
        )
        .unwrap();
        let cal = WorkCalendar::embedded().with_overrides(&o);
        assert_eq!(cal.known_years(), vec![2024, 2025, 2026, 2027]);
        // Fri 1 Jan 2027 is a holiday, Sat 2 Jan is worked, Mon 4 Jan is an ordinary weekday.
        assert_eq!(
            cal.kind(d(2027, 1, 1)).unwrap(),
            DayKind::Holiday(CONFIGURED.into())
        );
        assert!(cal.is_working_day(d(2027, 1, 2)).unwrap());
        assert_eq!(cal.kind(d(2027, 1, 3)).unwrap(), DayKind::Weekend);
        assert_eq!(cal.kind(d(2027, 1, 4)).unwrap(), DayKind::Workday);
        // A listed date in a known year wins over the embedded data.
        assert!(!cal.is_working_day(d(2026, 12, 31)).unwrap());
        assert_eq!(
            cal.working_days_between(d(2026, 12, 28), d(2027, 1, 8))
                .unwrap(),
            9
        );
        // Without the override the embedded calendar is unchanged.
        assert!(
            WorkCalendar::embedded()
                .is_working_day(d(2026, 12, 31))
                .unwrap()
        );
    }

    #[test]
    fn an_override_year_replaces_the_embedded_schedule_and_holidays_win_conflicts() {
        let o = CalendarOverrides {
            years: vec![2026],
            holidays: vec![d(2026, 3, 2)],
            workdays: vec![d(2026, 3, 2)],
        };
        let cal = WorkCalendar::embedded().with_overrides(&o);
        // The embedded National Day holiday is gone: the year is as the overrides describe it.
        assert!(cal.is_working_day(d(2026, 10, 5)).unwrap());
        assert!(!cal.is_working_day(d(2026, 2, 14)).unwrap());
        assert!(!cal.is_working_day(d(2026, 3, 2)).unwrap());
        // Other years keep their data.
        assert!(!cal.is_working_day(d(2025, 10, 8)).unwrap());
    }

    #[test]
    fn overrides_for_an_unlisted_unknown_year_change_nothing() {
        let o = CalendarOverrides {
            holidays: vec![d(2027, 1, 1)],
            ..Default::default()
        };
        let cal = WorkCalendar::embedded().with_overrides(&o);
        assert_eq!(
            cal.is_working_day(d(2027, 1, 1)),
            Err(CalendarError::NoData { year: 2027 })
        );
    }

    #[test]
    fn override_dates_are_toml_dates_or_quoted_dates_but_never_times() {
        let o: CalendarOverrides =
            toml::from_str("holidays = [2027-01-01, \"2027-01-02\"]\n").unwrap();
        assert_eq!(o.holidays, vec![d(2027, 1, 1), d(2027, 1, 2)]);
        for bad in [
            "holidays = [2027-01-01T08:00:00]",
            "holidays = [2027-01-01T08:00:00+08:00]",
            "holidays = [08:00:00]",
            "holidays = [\"1 Jan 2027\"]",
            "holidays = [\"2027-02-30\"]",
            "holidays = [20270101]",
        ] {
            let err = toml::from_str::<CalendarOverrides>(bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("2026-10-01"), "{bad}: {err}");
        }
    }

    #[test]
    fn overrides_refuse_unknown_fields() {
        let err = toml::from_str::<CalendarOverrides>("holiday = [2027-01-01]\n").unwrap_err();
        assert!(err.to_string().contains("holiday"), "{err}");
    }

    #[test]
    fn the_data_loader_refuses_inconsistent_data() {
        let year = |body: &str| format!("[[year]]\nyear = 2030\nsource = \"x\"\n{body}");
        let cases = [
            (
                "holidays = [{ name = \"a\", from = 2031-01-01, to = 2031-01-01 }]\nworkdays = []",
                "listed under year 2030",
            ),
            (
                "holidays = [{ name = \"a\", from = 2030-01-03, to = 2030-01-01 }]\nworkdays = []",
                "ends before it starts",
            ),
            (
                "holidays = []\nworkdays = [{ name = \"a\", date = 2030-01-02 }]",
                "not a weekend day",
            ),
            (
                "holidays = [{ name = \"a\", from = 2030-01-05, to = 2030-01-06 }]\nworkdays = [{ name = \"a\", date = 2030-01-05 }]",
                "listed twice",
            ),
            ("holidays = []\nworkdays = []\nextra = 1", "extra"),
        ];
        for (body, expected) in cases {
            let err = WorkCalendar::from_toml(&year(body)).unwrap_err();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }
}
