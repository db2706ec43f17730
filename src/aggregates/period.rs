//! The period of an aggregate's rows: a day, an ISO week (from Monday) or a
//! month, each a run of days of the reporting timezone (the days of the
//! daily rollups are already in it). Incremental mode maps the dirty days to
//! the periods that hold them and rewrites those periods whole.

use chrono::{Datelike, Days, NaiveDate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// An ISO week, keyed by its Monday.
    Week,
    /// A calendar month, keyed by its first day.
    Month,
}

impl Period {
    /// The key column holding the period's first day (also the unit
    /// `date_trunc` takes).
    pub fn column(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// What one is called, for counts (`3 weeks rewritten`).
    pub fn noun(self) -> &'static str {
        self.column()
    }

    /// The first day of the period holding `day`.
    pub fn start(self, day: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => day,
            Period::Week => day - Days::new(u64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
        }
    }

    /// The last day of the period starting on `start`.
    fn end(self, start: NaiveDate) -> NaiveDate {
        let next = match self {
            Period::Day => start.checked_add_days(Days::new(1)),
            Period::Week => start.checked_add_days(Days::new(7)),
            Period::Month => start.checked_add_months(chrono::Months::new(1)),
        };
        next.and_then(|n| n.pred_opt()).unwrap_or(start)
    }

    /// The periods holding `days` (their first days), sorted and distinct,
    /// and every day of those periods, sorted.
    pub fn covering(self, days: &[NaiveDate]) -> (Vec<NaiveDate>, Vec<NaiveDate>) {
        let mut starts: Vec<NaiveDate> = days.iter().map(|d| self.start(*d)).collect();
        starts.sort();
        starts.dedup();
        let covered =
            starts.iter().flat_map(|start| start.iter_days().take_while(move |d| *d <= self.end(*start))).collect();
        (starts, covered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_months_on_the_first() {
        // 2026-11-30 is a Monday; 2026-11-29 a Sunday.
        assert_eq!(Period::Week.start(d(2026, 11, 29)), d(2026, 11, 23));
        assert_eq!(Period::Week.start(d(2026, 11, 30)), d(2026, 11, 30));
        assert_eq!(Period::Week.start(d(2027, 1, 1)), d(2026, 12, 28), "an ISO week across the new year");
        assert_eq!(Period::Month.start(d(2024, 2, 29)), d(2024, 2, 1));
        assert_eq!(Period::Day.start(d(2024, 2, 29)), d(2024, 2, 29));
    }

    #[test]
    fn covering_gives_whole_periods() {
        let (starts, days) = Period::Week.covering(&[d(2026, 11, 29), d(2026, 11, 24), d(2026, 12, 1)]);
        assert_eq!(starts, [d(2026, 11, 23), d(2026, 11, 30)]);
        assert_eq!(days.len(), 14);
        assert_eq!((days[0], days[13]), (d(2026, 11, 23), d(2026, 12, 6)));
        let (starts, days) = Period::Month.covering(&[d(2024, 2, 10)]);
        assert_eq!(starts, [d(2024, 2, 1)]);
        assert_eq!((days.len(), days[28]), (29, d(2024, 2, 29)));
        let (starts, days) = Period::Day.covering(&[d(2024, 2, 10), d(2024, 2, 10)]);
        assert_eq!((starts.clone(), days), (vec![d(2024, 2, 10)], starts));
        // The last days PostgreSQL's dates and the claim allow.
        let (_, days) = Period::Month.covering(&[d(9999, 12, 31)]);
        assert_eq!(days.last(), Some(&d(9999, 12, 31)));
        assert_eq!(Period::Week.covering(&[d(1, 1, 1)]).0, [d(1, 1, 1)], "0001-01-01 is a Monday");
    }
}
