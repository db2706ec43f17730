//! How a source row maps to the days of an aggregate: the [`DirtyRule`]s a
//! registry entry lists, from which the invalidation triggers
//! ([`super::triggers`]) and the claim of an incremental refresh are
//! derived, and the attribution touch window (`sql/rules/touch_window.sql`),
//! written once and expanded wherever a template calls it.

use crate::db::template::{expand_calls, fragment, render};

/// The touch-window rule's fragments (`is_touch`, `touch_window`, `window_end`).
const TOUCH_WINDOW: &str = include_str!("../../sql/rules/touch_window.sql");

/// What makes a day of an aggregate dirty in incremental mode: the rules
/// the generated invalidation triggers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirtyRule {
    /// A row of `table` written, changed (old and new values) or deleted
    /// dirties the day of its `column` ([`DayIn`]).
    DayOf { table: &'static str, column: &'static str, day: DayIn },
    /// A row of `table` written, changed (old and new values) or deleted
    /// dirties the days of the rows of `fact` whose `fact_column` equals its
    /// `column` (a table joined to the fact table by that equality): the
    /// day of their `fact_day` column. Its marks carry the key values; the
    /// claim finds the days (so a fact row committed after the write is seen).
    ///
    /// `watched` empty: any write matters. Otherwise only an UPDATE that
    /// changes one of those columns (or the key) does: the table's INSERTs
    /// and DELETEs cannot change what joins, because a foreign key from
    /// the fact table holds (a lead with conversions cannot be deleted, a
    /// new lead has none), and its other columns are not read.
    Joined {
        table: &'static str,
        column: &'static str,
        fact: &'static str,
        fact_column: &'static str,
        fact_day: &'static str,
        day: DayIn,
        watched: &'static [&'static str],
    },
    /// An event with a user and a utm_source dirties the days of the
    /// conversions in the touch window after it (attribution's touches).
    TouchWindow,
}

impl DirtyRule {
    /// The source table the rule watches.
    pub fn table(&self) -> &'static str {
        match self {
            DirtyRule::DayOf { table, .. } | DirtyRule::Joined { table, .. } => table,
            DirtyRule::TouchWindow => "marketing.events",
        }
    }
}

/// How a source column becomes a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayIn {
    /// A timestamp's date in the configured `reporting_timezone`.
    ReportingZone,
    /// A timestamp's date in this IANA zone (a declared aggregate's own).
    Zone(&'static str),
    /// A calendar date, as it is.
    Date,
}

impl DayIn {
    /// The day of `column` (an SQL expression) as SQL, given the reporting
    /// timezone as a literal.
    pub fn of(&self, column: &str, reporting_tz: &str) -> String {
        match self {
            DayIn::ReportingZone => format!("({column} AT TIME ZONE {reporting_tz})::date"),
            DayIn::Zone(zone) => format!("({column} AT TIME ZONE {})::date", crate::db::quote_literal(zone)),
            DayIn::Date => column.to_string(),
        }
    }
}

/// The live key of a daily aggregate: one output column whose value a
/// source row determines (e.g. the campaign). A small statement's marks carry
/// the key values of its rows, and a live read recomputes a day so marked
/// only for those values (docs/incremental.md, "Keyed marks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveKey {
    /// The output column, on the stored rows.
    pub column: &'static str,
    /// The source column it comes from, on the rows of the rule's table.
    pub source: &'static str,
    /// The output maps a NULL or empty source value to `'(none)'`.
    pub none_if_empty: bool,
}

impl LiveKey {
    /// The output column's value for the source row `alias`, as SQL.
    pub fn expression(&self, alias: &str) -> String {
        match self.none_if_empty {
            true => format!("coalesce(nullif({alias}.{}, ''), '(none)')", self.source),
            false => format!("{alias}.{}", self.source),
        }
    }
}

/// Expands the touch-window calls in `sql` — `{{is_touch(alias)}}`,
/// `{{touch_window(touch, conversion)}}`, `{{window_end(touch)}}` — with
/// the attribution lookback filled in.
pub fn expand_touch_window(sql: &str, lookback_days: u32) -> String {
    let lookback = lookback_days.to_string();
    let call = |name: &'static str, parameters: &'static [&'static str]| {
        let lookback = lookback.clone();
        move |args: &[&str]| {
            let mut values: Vec<(&str, &str)> = parameters.iter().copied().zip(args.iter().copied()).collect();
            values.push(("lookback_days", &lookback));
            render(&fragment(TOUCH_WINDOW, name), &values)
        }
    };
    let sql = expand_calls(sql, "is_touch", call("is_touch", &["event"]));
    let sql = expand_calls(&sql, "touch_window", call("touch_window", &["touch", "conversion"]));
    expand_calls(&sql, "window_end", call("window_end", &["touch"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_touch_window_expands_in_both_directions() {
        let sql = "ON {{touch_window(e.occurred_at, cv.occurred_at)}} AND {{is_touch(e)}} / {{window_end(upper)}}";
        assert_eq!(
            expand_touch_window(sql, 7),
            "ON e.occurred_at <= cv.occurred_at AND e.occurred_at > cv.occurred_at - make_interval(days => 7) \
             AND nullif(e.utm_source, '') IS NOT NULL / (upper + make_interval(days => 7))"
        );
    }
}
