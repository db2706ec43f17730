//! Generating the invalidation triggers' SQL from the registry's
//! [`DirtyRule`]s and the configuration: pure, so it is unit-tested.

use super::super::{DirtyRule, REGISTRY};
use crate::config::{Config, Mode};
use crate::db::quote_ident;

/// Source tables that can carry invalidation triggers.
pub(super) const SOURCES: &[&str] =
    &["marketing.events", "marketing.leads", "marketing.conversions", "marketing.campaign_spend"];

pub(super) const OPERATIONS: &[&str] = &["insert", "update", "delete", "truncate"];

/// The generated trigger functions and triggers of one source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSet {
    pub table: &'static str,
    /// `CREATE OR REPLACE FUNCTION` statements.
    pub functions: Vec<String>,
    /// (trigger name, `CREATE TRIGGER` statement) on the table itself.
    pub triggers: Vec<(String, String)>,
}

/// The (aggregate, rule) pairs that watch `table` under `config`.
fn watchers(config: &Config, table: &str) -> Vec<(&'static str, DirtyRule)> {
    REGISTRY
        .iter()
        .filter(|a| config.aggregate(a.name).is_some_and(|s| s.enabled && s.mode == Mode::Incremental))
        .flat_map(|a| a.dirtied_by.iter().filter(|rule| rule.table() == table).map(move |rule| (a.name, *rule)))
        .collect()
}

/// Whether any enabled aggregate is in incremental mode.
pub fn any_incremental(config: &Config) -> bool {
    SOURCES.iter().any(|table| !watchers(config, table).is_empty())
}

/// The trigger set `config` wants on `table`, or `None` when no incremental
/// aggregate reads it (then it carries no triggers: no ingest overhead).
pub fn generate(config: &Config, table: &'static str) -> Option<TriggerSet> {
    let watchers = watchers(config, table);
    if watchers.is_empty() {
        return None;
    }
    let tz = config.reporting_timezone.sql_literal();
    let lookback = config.attribution_lookback_days;
    let base = function_base(table);
    let mut functions = Vec::new();
    let mut triggers = Vec::new();
    for op in OPERATIONS {
        let body: Vec<String> = match *op {
            // The hot path (ingest): one pass over the transition table for every rule.
            "insert" | "delete" => combined_marks(op, &watchers, &tz, lookback),
            _ => watchers.iter().filter_map(|(aggregate, rule)| mark(op, aggregate, *rule, &tz, lookback)).collect(),
        };
        let body = if body.is_empty() { "NULL;".to_string() } else { body.join("\n    ") };
        let function = format!("tally.{base}_{op}");
        functions.push(format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $tally$\nBEGIN\n    {body}\n    RETURN NULL;\nEND\n$tally$"
        ));
        let referencing = match *op {
            "insert" => "REFERENCING NEW TABLE AS new_rows ",
            "update" => "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
            "delete" => "REFERENCING OLD TABLE AS old_rows ",
            _ => "",
        };
        let name = format!("tally_invalidate_{op}");
        triggers.push((
            name.clone(),
            format!(
                "CREATE TRIGGER {name} AFTER {} ON {} {referencing}FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
                op.to_uppercase(),
                qualified(table)
            ),
        ));
    }
    if table == "marketing.events" {
        let body: Vec<String> =
            watchers.iter().map(|(aggregate, rule)| partition_mark(aggregate, *rule, &tz, lookback)).collect();
        functions.push(format!(
            "CREATE OR REPLACE FUNCTION tally.{base}_truncate_partition() RETURNS trigger LANGUAGE plpgsql AS $tally$\n\
             DECLARE lower timestamptz; upper timestamptz;\nBEGIN\n    IF TG_NARGS < 2 THEN\n        {}\n        RETURN NULL;\n    END IF;\n    \
             lower := TG_ARGV[0]::timestamptz;\n    upper := TG_ARGV[1]::timestamptz;\n    {}\n    RETURN NULL;\nEND\n$tally$",
            watchers.iter().map(|(aggregate, _)| all_mark(aggregate)).collect::<Vec<_>>().join("\n        "),
            body.join("\n    ")
        ));
    }
    Some(TriggerSet { table, functions, triggers })
}

/// For INSERT and DELETE: one statement per day column, grouping the
/// transition table once by day and emitting a mark per day for every rule
/// on that column (and the touch window, on `occurred_at`).
fn combined_marks(op: &str, watchers: &[(&'static str, DirtyRule)], tz: &str, lookback: u32) -> Vec<String> {
    let rows = if op == "insert" { "new_rows" } else { "old_rows" };
    let touch = watchers.iter().find(|(_, rule)| *rule == DirtyRule::TouchWindow).map(|(a, _)| *a);
    let mut columns: Vec<(&str, bool)> = watchers
        .iter()
        .filter_map(
            |(_, rule)| if let DirtyRule::DayOf { column, zoned, .. } = rule { Some((*column, *zoned)) } else { None },
        )
        .collect();
    if touch.is_some() && !columns.contains(&("occurred_at", true)) {
        columns.push(("occurred_at", true));
    }
    columns.dedup();
    columns
        .iter()
        .map(|(column, zoned)| {
            let mut entries: Vec<String> = watchers
                .iter()
                .filter(|(_, rule)| matches!(rule, DirtyRule::DayOf { column: c, .. } if c == column))
                .map(|(aggregate, _)| format!("('{aggregate}', 'days', dirty.d, dirty.d)"))
                .collect();
            let day = day_of(column, *zoned, tz);
            let mut last_touch = "NULL::timestamptz".to_string();
            if let (Some(aggregate), "occurred_at") = (touch, *column) {
                entries.push(format!(
                    "('{aggregate}', 'touch_window', dirty.d, ((dirty.last_touch + make_interval(days => {lookback})) AT TIME ZONE {tz})::date)"
                ));
                last_touch = "max(r.occurred_at) FILTER (WHERE r.user_id IS NOT NULL AND nullif(r.utm_source, '') IS NOT NULL)".to_string();
            }
            format!(
                "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) \
                 SELECT m.aggregate, m.kind, m.first_day, m.last_day \
                 FROM (SELECT {day} AS d, {last_touch} AS last_touch FROM {rows} AS r GROUP BY 1) AS dirty \
                 CROSS JOIN LATERAL (VALUES {}) AS m(aggregate, kind, first_day, last_day) \
                 WHERE m.kind <> 'touch_window' OR dirty.last_touch IS NOT NULL;",
                entries.join(", ")
            )
        })
        .collect()
}

/// The statement that records what `rule` makes dirty for operation `op`.
fn mark(op: &str, aggregate: &str, rule: DirtyRule, tz: &str, lookback: u32) -> Option<String> {
    if op == "truncate" {
        return Some(all_mark(aggregate));
    }
    let rows = match op {
        "insert" => "new_rows",
        "delete" => "old_rows",
        _ => "(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows)",
    };
    match rule {
        DirtyRule::DayOf { column, zoned, .. } => Some(format!(
            "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) \
             SELECT '{aggregate}', 'days', d, d FROM (SELECT DISTINCT {} AS d FROM {rows} AS r) AS dirty;",
            day_of(column, zoned, tz)
        )),
        DirtyRule::TouchWindow => {
            // On UPDATE only rows whose touch-defining columns changed matter.
            let rows = if op == "update" {
                "(SELECT o.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id \
                   WHERE (o.user_id, o.utm_source, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.occurred_at) \
                  UNION ALL SELECT n.* FROM old_rows AS o JOIN new_rows AS n ON n.id = o.id \
                   WHERE (o.user_id, o.utm_source, o.occurred_at) IS DISTINCT FROM (n.user_id, n.utm_source, n.occurred_at))"
            } else {
                rows
            };
            Some(format!(
                "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) \
                 SELECT '{aggregate}', 'touch_window', d, ((last_touch + make_interval(days => {lookback})) AT TIME ZONE {tz})::date \
                 FROM (SELECT (r.occurred_at AT TIME ZONE {tz})::date AS d, max(r.occurred_at) AS last_touch FROM {rows} AS r \
                       WHERE r.user_id IS NOT NULL AND nullif(r.utm_source, '') IS NOT NULL GROUP BY 1) AS dirty;"
            ))
        }
        DirtyRule::LeadAttribution if op == "update" => Some(format!(
            "INSERT INTO tally.invalidations (aggregate, kind, lead_id) \
             SELECT DISTINCT '{aggregate}', 'lead', n.id FROM new_rows AS n JOIN old_rows AS o ON o.id = n.id \
             WHERE (o.source, o.campaign, o.user_id) IS DISTINCT FROM (n.source, n.campaign, n.user_id);"
        )),
        // A new lead has no conversions yet; a lead with conversions cannot be deleted.
        DirtyRule::LeadAttribution => None,
    }
}

/// The day of row `r`'s `column`: a timestamp's date in the reporting
/// timezone, or the column itself when it already is a calendar date.
fn day_of(column: &str, zoned: bool, tz: &str) -> String {
    if zoned { format!("(r.{column} AT TIME ZONE {tz})::date") } else { format!("r.{column}") }
}

fn all_mark(aggregate: &str) -> String {
    format!("INSERT INTO tally.invalidations (aggregate, kind) VALUES ('{aggregate}', 'all');")
}

/// What TRUNCATE of one monthly partition (bounds `lower`, `upper`) dirties.
fn partition_mark(aggregate: &str, rule: DirtyRule, tz: &str, lookback: u32) -> String {
    let (kind, last) = match rule {
        DirtyRule::TouchWindow => {
            ("touch_window", format!("((upper + make_interval(days => {lookback})) AT TIME ZONE {tz})::date"))
        }
        _ => ("days", format!("((upper - interval '1 microsecond') AT TIME ZONE {tz})::date")),
    };
    format!(
        "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day) VALUES ('{aggregate}', '{kind}', (lower AT TIME ZONE {tz})::date, {last});"
    )
}

pub(super) fn function_base(table: &str) -> String {
    format!("invalidate_{}", table.rsplit('.').next().unwrap_or(table))
}

pub(super) fn qualified(table: &str) -> String {
    table.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        Config::from_toml(toml, std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn no_incremental_aggregate_means_no_trigger() {
        let none = config("");
        assert!(SOURCES.iter().all(|table| generate(&none, table).is_none()));
        assert!(!any_incremental(&none));
    }

    #[test]
    fn one_pass_over_inserted_events_marks_every_rule() {
        let both = config(
            "reporting_timezone = \"America/New_York\"\n[aggregates.daily_event_counts]\nmode = \"incremental\"\n\
             [aggregates.daily_attribution]\nmode = \"incremental\"\n",
        );
        let events = generate(&both, "marketing.events").unwrap();
        assert_eq!(events.triggers.len(), 4);
        let insert = &events.functions[0];
        assert_eq!(insert.matches("INSERT INTO tally.invalidations").count(), 1, "{insert}");
        assert!(insert.contains("('daily_event_counts', 'days', dirty.d, dirty.d)"), "{insert}");
        assert!(insert.contains("'daily_attribution', 'touch_window'"), "{insert}");
        assert!(insert.contains("AT TIME ZONE 'America/New_York'"), "{insert}");
        assert!(!insert.contains("daily_campaign_metrics"), "only incremental aggregates are marked");
        assert!(events.functions.iter().any(|f| f.contains("_truncate_partition()")), "partitions report TRUNCATE");
        let leads = generate(&both, "marketing.leads").unwrap();
        let update = &leads.functions[1];
        assert!(update.contains("'lead', n.id"), "{update}");
        assert!(generate(&both, "marketing.conversions").is_some());
    }
}
