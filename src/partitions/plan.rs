//! What partition maintenance should do to one table, decided from what
//! exists and from `today` alone: pure, so every calendar edge is a unit test.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::month::{Month, required_months};

/// The settings planning depends on (from `[partitions]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    /// Future months that must exist besides the current one.
    pub premake_months: u32,
    /// Keep the current month and this many before it; older months retire.
    pub retention_months: Option<u32>,
}

/// The actions for one table, each list in month order. They run in this
/// order: create, rescue, retire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionPlan {
    /// Missing current or future months, with no rows waiting in the default partition.
    pub create: Vec<Month>,
    /// Months whose rows sit in the default partition (late or far-future
    /// data), with their row counts: create the month, move the rows, attach.
    pub rescue: Vec<(Month, i64)>,
    /// Attached (or rescued) months older than the retention horizon.
    pub retire: Vec<Month>,
}

impl PartitionPlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.rescue.is_empty() && self.retire.is_empty()
    }
}

/// The first month retention keeps, if retention is on: every month before
/// it retires. Never later than the month before the current one.
pub fn retention_horizon(today: NaiveDate, retention_months: Option<u32>) -> Option<Month> {
    retention_months.map(|months| Month::of(today).plus(-(months.max(1) as i32)))
}

/// Plans maintenance of a table that has `months` attached and
/// `default_rows` (per month) in its default partition.
pub fn plan(
    months: &[Month],
    default_rows: &BTreeMap<Month, i64>,
    today: NaiveDate,
    settings: PlanSettings,
) -> PartitionPlan {
    let stray = |month: &Month| default_rows.get(month).copied().unwrap_or(0) > 0;
    let create = required_months(today, settings.premake_months)
        .into_iter()
        .filter(|month| !months.contains(month) && !stray(month))
        .collect();
    let rescue: Vec<(Month, i64)> = default_rows.iter().filter(|(_, rows)| **rows > 0).map(|(m, r)| (*m, *r)).collect();
    let mut retire: Vec<Month> = match retention_horizon(today, settings.retention_months) {
        Some(horizon) => {
            months.iter().copied().chain(rescue.iter().map(|(m, _)| *m)).filter(|m| *m < horizon).collect()
        }
        None => Vec::new(),
    };
    retire.sort();
    retire.dedup();
    PartitionPlan { create, rescue, retire }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(year: i32, month: u32) -> Month {
        Month::new(year, month).unwrap()
    }

    fn day(y: i32, mo: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap()
    }

    const PREMAKE_3: PlanSettings = PlanSettings { premake_months: 3, retention_months: None };

    #[test]
    fn creates_only_the_missing_current_and_future_months() {
        let existing = [m(2026, 11), m(2026, 12)];
        let plan = plan(&existing, &BTreeMap::new(), day(2026, 11, 25), PREMAKE_3);
        assert_eq!(plan.create, [m(2027, 1), m(2027, 2)]);
        assert!(plan.rescue.is_empty() && plan.retire.is_empty());
        let complete = [m(2026, 11), m(2026, 12), m(2027, 1), m(2027, 2)];
        assert!(super::plan(&complete, &BTreeMap::new(), day(2026, 11, 30), PREMAKE_3).is_empty());
    }

    #[test]
    fn a_clock_on_the_31st_and_a_leap_day_plan_whole_months() {
        let on_31st = plan(&[], &BTreeMap::new(), day(2027, 1, 31), PREMAKE_3);
        assert_eq!(on_31st.create, [m(2027, 1), m(2027, 2), m(2027, 3), m(2027, 4)]);
        let leap =
            plan(&[], &BTreeMap::new(), day(2028, 2, 29), PlanSettings { premake_months: 1, retention_months: None });
        assert_eq!(leap.create, [m(2028, 2), m(2028, 3)]);
        let new_year =
            plan(&[], &BTreeMap::new(), day(2026, 12, 31), PlanSettings { premake_months: 1, retention_months: None });
        assert_eq!(new_year.create, [m(2026, 12), m(2027, 1)]);
    }

    #[test]
    fn months_with_rows_in_the_default_are_rescued_not_created() {
        let stray = BTreeMap::from([(m(2027, 1), 7), (m(2019, 3), 2), (m(2030, 6), 0)]);
        let plan = plan(&[m(2026, 11)], &stray, day(2026, 11, 25), PREMAKE_3);
        assert_eq!(plan.create, [m(2026, 12), m(2027, 2)]);
        assert_eq!(plan.rescue, [(m(2019, 3), 2), (m(2027, 1), 7)]);
        assert!(plan.retire.is_empty());
    }

    #[test]
    fn retention_retires_whole_old_months_and_never_current_or_future_ones() {
        let months: Vec<Month> = (0..30).map(|n| m(2024, 6).plus(n)).collect(); // 2024-06 .. 2026-11
        let settings = PlanSettings { premake_months: 3, retention_months: Some(12) };
        let plan = plan(&months, &BTreeMap::new(), day(2026, 11, 25), settings);
        // 2025-11 holds data newer than a year ago (2025-11-25): kept. 2025-10 and older go.
        assert_eq!(plan.retire.first(), Some(&m(2024, 6)));
        assert_eq!(plan.retire.last(), Some(&m(2025, 10)));
        assert_eq!(plan.retire.len(), 17);
        for short in [1, 2] {
            let settings = PlanSettings { premake_months: 3, retention_months: Some(short) };
            let plan = super::plan(&months, &BTreeMap::new(), day(2026, 11, 1), settings);
            assert!(plan.retire.iter().all(|r| *r < m(2026, 11).plus(-(short as i32))), "{short}");
            assert!(!plan.retire.contains(&m(2026, 11)) && !plan.retire.contains(&m(2026, 10)));
        }
    }

    #[test]
    fn rescued_months_older_than_the_horizon_retire_too() {
        let stray = BTreeMap::from([(m(2020, 1), 5)]);
        let settings = PlanSettings { premake_months: 0, retention_months: Some(6) };
        let plan = plan(&[m(2026, 11)], &stray, day(2026, 11, 2), settings);
        assert_eq!(plan.rescue, [(m(2020, 1), 5)]);
        assert_eq!(plan.retire, [m(2020, 1)]);
    }

    #[test]
    fn the_horizon_is_whole_months_before_the_current_one() {
        assert_eq!(retention_horizon(day(2026, 3, 31), Some(1)), Some(m(2026, 2)));
        assert_eq!(retention_horizon(day(2026, 1, 1), Some(13)), Some(m(2024, 12)));
        assert_eq!(retention_horizon(day(2026, 1, 1), None), None);
    }
}
