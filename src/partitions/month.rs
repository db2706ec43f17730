//! Calendar months in UTC: the unit of `marketing.events` partitions. Pure
//! arithmetic on dates, no clock, so every edge (year ends, leap years) is
//! unit-tested.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

/// A calendar month, e.g. 2026-11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    /// 1..=12
    month: u32,
}

impl Month {
    /// The month `year-month`, if `month` is 1..=12.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        (1..=12).contains(&month).then_some(Month { year, month })
    }

    /// The month a date falls in.
    pub fn of(date: NaiveDate) -> Month {
        Month { year: date.year(), month: date.month() }
    }

    /// The month `n` months later (`n` may be negative).
    pub fn plus(self, n: i32) -> Month {
        let index = self.year * 12 + (self.month as i32 - 1) + n;
        Month { year: index.div_euclid(12), month: index.rem_euclid(12) as u32 + 1 }
    }

    /// The first day of the month.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// The number of days in the month.
    pub fn days(self) -> i64 {
        (self.plus(1).first_day() - self.first_day()).num_days()
    }

    /// The first instant of the month in UTC: the partition's lower bound
    /// (inclusive); `self.plus(1).start()` is its upper bound (exclusive).
    pub fn start(self) -> DateTime<Utc> {
        Utc.from_utc_datetime(&self.first_day().and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    /// The partition of `table` holding this month, e.g. `events_p2026_11`.
    pub fn partition_name(self, table: &str) -> String {
        format!("{table}_p{:04}_{:02}", self.year, self.month)
    }

    /// The month of a partition named by [`Month::partition_name`]; `None` for other names.
    pub fn from_partition_name(table: &str, name: &str) -> Option<Month> {
        let suffix = name.strip_prefix(table)?.strip_prefix("_p")?;
        let (year, month) = suffix.split_once('_')?;
        if year.len() != 4 || month.len() != 2 {
            return None;
        }
        Month::new(year.parse().ok()?, month.parse().ok()?)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// The months that must exist on `today`: the current month and the next
/// `premake` months, in order.
pub fn required_months(today: NaiveDate, premake: u32) -> Vec<Month> {
    let current = Month::of(today);
    (0..=premake as i32).map(|n| current.plus(n)).collect()
}

/// Every month from `first` to `last`, both included; empty if `last` is earlier.
pub fn months_between(first: Month, last: Month) -> Vec<Month> {
    std::iter::successors(Some(first), |m| Some(m.plus(1))).take_while(|m| *m <= last).collect()
}

/// Sorted months as runs of consecutive ones: `["1969-12", "2026-11 .. 2027-02"]`,
/// so a gap is never shown as if the months in it existed.
pub fn month_ranges(months: &[Month]) -> Vec<String> {
    let mut runs: Vec<(Month, Month)> = Vec::new();
    for month in months {
        match runs.last_mut() {
            Some((_, last)) if last.plus(1) == *month => *last = *month,
            _ => runs.push((*month, *month)),
        }
    }
    runs.into_iter()
        .map(|(first, last)| if first == last { first.to_string() } else { format!("{first} .. {last}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_show_gaps() {
        let months: Vec<Month> = [(1969, 12), (2026, 11), (2026, 12), (2027, 1), (2027, 2)]
            .iter()
            .map(|(y, m)| Month::new(*y, *m).unwrap())
            .collect();
        assert_eq!(month_ranges(&months), ["1969-12", "2026-11 .. 2027-02"]);
        assert_eq!(month_ranges(&months[1..2]), ["2026-11"]);
        assert!(month_ranges(&[]).is_empty());
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn months_roll_over_year_ends_both_ways() {
        let december = Month::new(2026, 12).unwrap();
        assert_eq!(december.plus(1), Month::new(2027, 1).unwrap());
        assert_eq!(december.plus(14), Month::new(2028, 2).unwrap());
        assert_eq!(Month::new(2027, 1).unwrap().plus(-1), december);
        assert_eq!(Month::new(2027, 1).unwrap().plus(-13), Month::new(2025, 12).unwrap());
        assert_eq!(Month::new(2026, 13), None);
        assert_eq!(Month::new(2026, 0), None);
    }

    #[test]
    fn leap_years_have_29_days_in_february() {
        assert_eq!(Month::new(2028, 2).unwrap().days(), 29);
        assert_eq!(Month::new(2027, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2100, 2).unwrap().days(), 28);
        assert_eq!(Month::new(2000, 2).unwrap().days(), 29);
        assert_eq!(Month::new(2026, 12).unwrap().days(), 31);
        assert_eq!(Month::of(date(2028, 2, 29)), Month::new(2028, 2).unwrap());
    }

    #[test]
    fn bounds_are_utc_month_starts() {
        let month = Month::new(2026, 12).unwrap();
        assert_eq!(month.start().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(month.plus(1).start().to_rfc3339(), "2027-01-01T00:00:00+00:00");
    }

    #[test]
    fn required_months_cross_the_year_end() {
        let months: Vec<String> = required_months(date(2026, 11, 25), 3).iter().map(|m| m.to_string()).collect();
        assert_eq!(months, ["2026-11", "2026-12", "2027-01", "2027-02"]);
        assert_eq!(required_months(date(2026, 12, 31), 0), vec![Month::new(2026, 12).unwrap()]);
        let leap: Vec<String> = required_months(date(2028, 2, 29), 1).iter().map(|m| m.to_string()).collect();
        assert_eq!(leap, ["2028-02", "2028-03"]);
    }

    #[test]
    fn months_between_includes_both_ends() {
        let from = Month::new(2026, 11).unwrap();
        let to = Month::new(2027, 2).unwrap();
        let months: Vec<String> = months_between(from, to).iter().map(|m| m.to_string()).collect();
        assert_eq!(months, ["2026-11", "2026-12", "2027-01", "2027-02"]);
        assert!(months_between(to, from).is_empty());
        assert_eq!(months_between(from, from), vec![from]);
    }

    #[test]
    fn partition_names_round_trip() {
        let month = Month::new(2027, 1).unwrap();
        assert_eq!(month.partition_name("events"), "events_p2027_01");
        assert_eq!(Month::from_partition_name("events", "events_p2027_01"), Some(month));
        assert_eq!(Month::from_partition_name("events", "events_default"), None);
        assert_eq!(Month::from_partition_name("events", "events_p2027_13"), None);
        assert_eq!(Month::from_partition_name("events", "other_p2027_01"), None);
        assert_eq!(Month::from_partition_name("events", "events_p27_1"), None);
    }
}
