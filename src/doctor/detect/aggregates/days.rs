//! Whether a query's days are the aggregates' days. An aggregate's `day` is
//! the date of `occurred_at` in `reporting_timezone`; a raw query's range or
//! grouping on `occurred_at` matches it only when its boundaries fall on
//! midnight in that zone. Anything else (a rolling `now() - interval`, a
//! cast in another session time zone) the aggregate can only approximate,
//! and the finding says so rather than promise the same numbers.
//!
//! Expressions here have their column qualifiers removed
//! ([`super::text::unqualified`]): `occurred_at`, not `events_1.occurred_at`.

use chrono::{DateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use crate::doctor::predicate::{mirror, split_operator, strip_parens};

/// The time zones days are cut in: the aggregates' and the session's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayZones {
    /// `reporting_timezone` of the config: the aggregates' days.
    pub reporting: Tz,
    /// The session's `TimeZone`, which `occurred_at::date` and
    /// `date_trunc('day', occurred_at)` use; `None` when it is not a named zone.
    pub session: Option<Tz>,
}

impl Default for DayZones {
    fn default() -> Self {
        DayZones { reporting: Tz::UTC, session: Some(Tz::UTC) }
    }
}

/// How the aggregate's days answer a condition or grouping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Exact,
    /// The aggregate's whole days approximate it, for this reason.
    Approximate(String),
}

/// The zone an expression cuts days in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zone {
    Session,
    Named(String),
}

/// How finely an expression groups time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    /// Weeks, months, quarters or years: whole days, summed.
    Coarser,
}

impl DayZones {
    /// Whether days cut in `zone` are the aggregates' days.
    pub fn fit(&self, zone: &Zone) -> Fit {
        let (tz, what) = match zone {
            Zone::Session => match self.session {
                Some(tz) => (tz, "the session time zone"),
                None => return Fit::Approximate("the session time zone is not a named zone".into()),
            },
            Zone::Named(name) => match name.parse::<Tz>() {
                Ok(tz) => (tz, "the time zone"),
                Err(_) => return Fit::Approximate(format!("the time zone {name} is not a named zone")),
            },
        };
        if same_days(tz, self.reporting) {
            Fit::Exact
        } else {
            Fit::Approximate(format!(
                "it cuts days in {what} {tz}, the aggregates in reporting_timezone {}",
                self.reporting
            ))
        }
    }

    /// How a condition on `occurred_at` (one top-level AND term) lines up
    /// with the aggregates' days; `None` when it is not a day range at all
    /// (an instant, another column).
    pub fn condition(&self, term: &str) -> Option<Fit> {
        let (left, op, right) = split_operator(strip_parens(term))?;
        let (left, op, right) =
            if right.contains("occurred_at") { (right, mirror(op), left) } else { (left, op, right) };
        if right.contains("occurred_at") || (matches!(op, "=" | "<>") && left == "occurred_at") {
            return None;
        }
        if let Some((Grain::Day, zone)) = day_expression(left) {
            return Some(self.fit(&zone));
        }
        if left != "occurred_at" || !matches!(op, ">=" | ">" | "<" | "<=") {
            return None;
        }
        // `>=` and `<` at midnight take whole days; `>` and `<=` shift by an instant.
        let whole_days = matches!(op, ">=" | "<");
        let boundary = if let Some(instant) = timestamptz_literal(right) {
            let local = instant.with_timezone(&self.reporting);
            if local.num_seconds_from_midnight() == 0 && local.nanosecond() == 0 {
                Fit::Exact
            } else {
                Fit::Approximate(format!("{right} is not midnight in reporting_timezone {}", self.reporting))
            }
        } else if right.ends_with("::date") || right.contains("CURRENT_DATE") {
            // A date compared with a timestamptz is midnight in the session time zone.
            self.fit(&Zone::Session)
        } else {
            Fit::Approximate(format!("the bound {right} is not a day boundary"))
        };
        Some(match boundary {
            Fit::Exact if !whole_days => {
                Fit::Approximate(format!("occurred_at {op} {right} takes or leaves the instant of midnight"))
            }
            fit => fit,
        })
    }
}

/// The day (or coarser period) of `occurred_at` an expression computes:
/// `(occurred_at)::date`, `((occurred_at AT TIME ZONE 'X'::text))::date`,
/// `date_trunc('day'::text, occurred_at[, 'X'::text])`.
pub fn day_expression(expression: &str) -> Option<(Grain, Zone)> {
    let expression = strip_parens(expression);
    if let Some(inner) = expression.strip_suffix("::date") {
        return Some((Grain::Day, zone_of(strip_parens(inner))?));
    }
    let arguments = expression.strip_prefix("date_trunc(")?.strip_suffix(')')?;
    let (unit, rest) = arguments.split_once(", ")?;
    let grain = match literal(unit)? {
        "day" => Grain::Day,
        "week" | "month" | "quarter" | "year" => Grain::Coarser,
        _ => return None,
    };
    let zone = match rest.rsplit_once(", ") {
        Some((column, zone)) if strip_parens(column) == "occurred_at" => Zone::Named(literal(zone)?.to_string()),
        _ => zone_of(strip_parens(rest))?,
    };
    Some((grain, zone))
}

/// `occurred_at` (the session's zone) or `occurred_at AT TIME ZONE 'X'::text`.
fn zone_of(expression: &str) -> Option<Zone> {
    if expression == "occurred_at" {
        return Some(Zone::Session);
    }
    let zone = expression.strip_prefix("occurred_at AT TIME ZONE ")?;
    Some(Zone::Named(literal(zone)?.to_string()))
}

/// The text of a `'...'::text` literal.
fn literal(text: &str) -> Option<&str> {
    let text = text.trim();
    let text = text.strip_suffix("::text").unwrap_or(text);
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'')).then_some(inner)
}

/// `'2026-11-01 00:00:00+00'::timestamp with time zone` as PostgreSQL prints
/// it (DateStyle ISO).
fn timestamptz_literal(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    let value = text.trim().strip_suffix("::timestamp with time zone")?;
    let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
    DateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f%#z").ok()
}

/// Whether two zones cut the same days (`UTC` and `Etc/UTC`; zones with the
/// same offsets in winter and summer).
fn same_days(a: Tz, b: Tz) -> bool {
    a == b
        || [(2026, 1, 15), (2026, 7, 15)].iter().all(|&(y, m, d)| {
            let Some(at) = Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single() else { return false };
            a.offset_from_utc_datetime(&at.naive_utc()).fix() == b.offset_from_utc_datetime(&at.naive_utc()).fix()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: DayZones = DayZones { reporting: Tz::America__New_York, session: Some(Tz::UTC) };

    #[test]
    fn ranges_fit_whole_days_only_at_midnight_in_the_reporting_zone() {
        let utc = DayZones { session: Some(Tz::Etc__UTC), ..DayZones::default() };
        let from = "(occurred_at >= '2026-11-01 00:00:00+00'::timestamp with time zone)";
        assert_eq!(utc.condition(from), Some(Fit::Exact));
        assert!(matches!(NEW_YORK.condition(from), Some(Fit::Approximate(why)) if why.contains("not midnight")));
        let new_york_midnight = "(occurred_at < '2026-11-02 05:00:00+00'::timestamp with time zone)";
        assert_eq!(NEW_YORK.condition(new_york_midnight), Some(Fit::Exact));
        let inclusive = "(occurred_at <= '2026-11-08 00:00:00+00'::timestamp with time zone)";
        assert!(matches!(utc.condition(inclusive), Some(Fit::Approximate(_))));
        let rolling = "(occurred_at >= (now() - '7 days'::interval))";
        assert!(matches!(utc.condition(rolling), Some(Fit::Approximate(why)) if why.contains("not a day boundary")));
        assert_eq!(utc.condition("(occurred_at >= (CURRENT_DATE - 7))"), Some(Fit::Exact));
        assert_eq!(utc.condition("((occurred_at)::date = '2026-11-20'::date)"), Some(Fit::Exact));
        assert!(matches!(NEW_YORK.condition("((occurred_at)::date = '2026-11-20'::date)"), Some(Fit::Approximate(_))));
        // An instant is no range of days.
        assert_eq!(utc.condition("(occurred_at = '2026-11-01 00:00:00+00'::timestamp with time zone)"), None);
    }

    #[test]
    fn day_expressions_say_their_grain_and_zone() {
        assert_eq!(day_expression("((occurred_at)::date)"), Some((Grain::Day, Zone::Session)));
        assert_eq!(
            day_expression("(((occurred_at AT TIME ZONE 'America/New_York'::text))::date)"),
            Some((Grain::Day, Zone::Named("America/New_York".into())))
        );
        assert_eq!(day_expression("(date_trunc('day'::text, occurred_at))"), Some((Grain::Day, Zone::Session)));
        assert_eq!(
            day_expression("date_trunc('month'::text, occurred_at, 'UTC'::text)"),
            Some((Grain::Coarser, Zone::Named("UTC".into())))
        );
        assert_eq!(day_expression("date_trunc('hour'::text, occurred_at)"), None);
        assert_eq!(day_expression("(received_at)::date"), None);
        assert_eq!(NEW_YORK.fit(&Zone::Named("America/New_York".into())), Fit::Exact);
        assert_eq!(DayZones::default().fit(&Zone::Named("Etc/UTC".into())), Fit::Exact);
    }
}
