//! Generating the invalidation triggers' SQL from the tracked aggregates'
//! [`DirtyRule`]s and the SQL templates of `sql/incremental/`: pure, so it
//! is unit-tested.

use super::super::rules::expand_touch_window;
use super::super::{Aggregate, DayIn, DirtyRule, LiveKey, REGISTRY};
use crate::config::{Config, Mode};
use crate::db::sql::quote_ident_if_needed;
use crate::db::template::render;
use crate::db::{quote_ident, quote_literal};
use owners::{Owner, owners};

pub(super) const OPERATIONS: &[&str] = &["insert", "update", "delete", "truncate"];

/// A statement that writes at most this many rows records, for aggregates
/// with a live key, the key values of its rows, and for attribution the
/// users of its touches (keyed marks); a larger one marks whole days and
/// windows, in one pass over its rows.
pub const KEYED_MARK_ROWS: usize = 64;

const FUNCTION: &str = include_str!("../../../sql/incremental/triggers/function.sql");
const TRIGGER: &str = include_str!("../../../sql/incremental/triggers/trigger.sql");
const TRUNCATE_PARTITION: &str = include_str!("../../../sql/incremental/triggers/truncate_partition_function.sql");
const DAYS: &str = include_str!("../../../sql/incremental/marks/days.sql");
const KEYED_DAYS: &str = include_str!("../../../sql/incremental/marks/keyed_days.sql");
const KEYED_TOUCHES: &str = include_str!("../../../sql/incremental/marks/keyed_touches.sql");
const DAYS_AND_TOUCHES: &str = include_str!("../../../sql/incremental/marks/days_and_touches.sql");
const TOUCHES: &str = include_str!("../../../sql/incremental/marks/touches.sql");
const CHANGED_TOUCHES: &str = include_str!("../../../sql/incremental/marks/changed_touches.sql");
const CHANGED_JOINED: &str = include_str!("../../../sql/incremental/marks/changed_joined.sql");
const JOINED: &str = include_str!("../../../sql/incremental/marks/joined.sql");
const EVERYTHING: &str = include_str!("../../../sql/incremental/marks/everything.sql");
const PARTITION_DAYS: &str = include_str!("../../../sql/incremental/marks/partition_days.sql");
const PARTITION_TOUCHES: &str = include_str!("../../../sql/incremental/marks/partition_touches.sql");

/// The generated trigger functions and triggers of one source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerSet {
    pub table: &'static str,
    /// `CREATE OR REPLACE FUNCTION` statements.
    pub functions: Vec<String>,
    /// (trigger name, `CREATE TRIGGER` statement) on the table itself.
    pub triggers: Vec<(String, String)>,
}

/// The configured aggregates whose days triggers track under `config`:
/// enabled, in incremental mode, with rules.
pub fn tracked(config: &Config) -> Vec<&'static Aggregate> {
    config
        .registry()
        .iter()
        .copied()
        .filter(|a| config.aggregate(a.name).is_some_and(|s| s.enabled && s.mode == Mode::Incremental))
        .filter(|a| !a.dirtied_by.is_empty())
        .collect()
}

/// Whether any enabled aggregate is in incremental mode.
pub fn any_incremental(config: &Config) -> bool {
    !tracked(config).is_empty()
}

/// Tables that can carry invalidation triggers: every table an aggregate of
/// the registry (or of `tracked`) reads, in registry order.
pub fn sources(tracked: &[&'static Aggregate]) -> Vec<&'static str> {
    let mut tables: Vec<&'static str> = Vec::new();
    for table in REGISTRY.iter().chain(tracked.iter().copied()).flat_map(Aggregate::sources) {
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    tables
}

/// Values every mark template may use.
struct Marks<'a> {
    tz: &'a str,
    lookback: u32,
}

impl Marks<'_> {
    fn render(&self, template: &str, values: &[(&str, &str)]) -> String {
        let mut values = values.to_vec();
        values.push(("tz", self.tz));
        render(&expand_touch_window(template, self.lookback), &values)
    }
}

/// The trigger set the `tracked` aggregates want on `table`, or `None` when
/// none of them reads it (then it carries no triggers: no ingest overhead).
pub fn generate(config: &Config, tracked: &[&'static Aggregate], table: &'static str) -> Option<TriggerSet> {
    let watchers: Vec<(&str, DirtyRule)> = tracked
        .iter()
        .flat_map(|a| a.dirtied_by.iter().filter(|rule| rule.table() == table).map(move |rule| (a.name, *rule)))
        .collect();
    if watchers.is_empty() {
        return None;
    }
    let tz = config.reporting_timezone.sql_literal();
    let marks = Marks { tz: &tz, lookback: config.attribution_lookback_days };
    let base = function_base(table);
    let mut functions = Vec::new();
    let mut triggers = Vec::new();
    // The aggregates whose first rule watches this table and that have a live key.
    let keyed: Vec<(&str, LiveKey)> = tracked
        .iter()
        .filter(|a| a.dirtied_by.first().is_some_and(|rule| rule.table() == table))
        .filter_map(|a| a.live_key.map(|key| (a.name, key)))
        .collect();
    let watchers = owners(&watchers, &keyed);
    for op in OPERATIONS {
        let whole: Vec<String> = match *op {
            "insert" | "delete" => {
                let joined = watchers.iter().filter(|(_, rule)| matches!(rule, DirtyRule::Joined { .. }));
                let joined = joined.filter_map(|(owner, rule)| mark(op, owner, *rule, &marks, false, None));
                combined_marks(op, &watchers, &marks).into_iter().chain(joined).collect()
            }
            _ => watchers.iter().filter_map(|(owner, rule)| mark(op, owner, *rule, &marks, false, None)).collect(),
        };
        let narrower = !keyed.is_empty() || watchers.iter().any(|(_, rule)| *rule == DirtyRule::TouchWindow);
        let body = match (*op, narrower) {
            ("truncate", _) | (_, false) => statements(&whole),
            _ => {
                let small: Vec<String> = watchers
                    .iter()
                    .filter_map(|(owner, rule)| {
                        let key = keyed.iter().find(|(name, _)| owner.one() == Some(*name)).map(|(_, key)| *key);
                        let key = key.filter(|_| matches!(rule, DirtyRule::DayOf { .. }));
                        mark(op, owner, *rule, &marks, true, key)
                    })
                    .collect();
                let rows = if *op == "delete" { "old_rows" } else { "new_rows" };
                format!(
                    "IF (SELECT count(*) FROM (SELECT FROM {rows} LIMIT {}) AS s) <= {KEYED_MARK_ROWS} THEN\n    {}\n    ELSE\n    {}\n    END IF;",
                    KEYED_MARK_ROWS + 1,
                    statements(&small),
                    statements(&whole)
                )
            }
        };
        let function = format!("tally.{base}_{op}");
        functions.push(render(FUNCTION, &[("function", &function), ("body", &body)]));
        let referencing = match *op {
            "insert" => "REFERENCING NEW TABLE AS new_rows ",
            "update" => "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows ",
            "delete" => "REFERENCING OLD TABLE AS old_rows ",
            _ => "",
        };
        let name = format!("tally_invalidate_{op}");
        let operation = op.to_uppercase();
        let create = render(
            TRIGGER,
            &[
                ("name", &name),
                ("operation", &operation),
                ("table", &qualified(table)),
                ("referencing", referencing),
                ("function", &function),
            ],
        );
        triggers.push((name, create));
    }
    if table == "marketing.events" {
        functions.push(truncate_partition_function(&base, &watchers, &marks));
    }
    Some(TriggerSet { table, functions, triggers })
}

/// For INSERT and DELETE: one statement per day column, grouping the
/// transition table once by day and emitting a mark per day for every rule
/// on that column (and the touch window, on `occurred_at`).
fn combined_marks(op: &str, watchers: &[(Owner, DirtyRule)], marks: &Marks) -> Vec<String> {
    let rows = if op == "insert" { "new_rows" } else { "old_rows" };
    let touch = watchers.iter().find(|(_, rule)| *rule == DirtyRule::TouchWindow).and_then(|(a, _)| a.one());
    let mut columns: Vec<(&str, DayIn)> = Vec::new();
    for (_, rule) in watchers {
        if let DirtyRule::DayOf { column, day, .. } = rule
            && !columns.contains(&(*column, *day))
        {
            columns.push((*column, *day));
        }
    }
    if touch.is_some() && !columns.contains(&("occurred_at", DayIn::ReportingZone)) {
        columns.push(("occurred_at", DayIn::ReportingZone));
    }
    columns
        .iter()
        .map(|(column, day)| {
            let mut entries: Vec<String> = watchers
                .iter()
                .filter(|(_, rule)| matches!(rule, DirtyRule::DayOf { column: c, day: d, .. } if c == column && d == day))
                .map(|(owner, _)| {
                    let (aggregate, members) = owner.columns();
                    format!("({aggregate}, {members}, 'days', dirty.d, dirty.d)")
                })
                .collect();
            let mut last_touch = "NULL::timestamptz".to_string();
            if let (Some(aggregate), ("occurred_at", DayIn::ReportingZone)) = (touch, (*column, *day)) {
                entries.push(format!(
                    "({}, NULL::text[], 'touch_window', dirty.d, ({{{{window_end(dirty.last_touch)}}}} AT TIME ZONE {{{{tz}}}})::date)",
                    quote_literal(aggregate)
                ));
                last_touch =
                    "max(r.occurred_at) FILTER (WHERE r.user_id IS NOT NULL AND {{is_touch(r)}})".to_string();
            }
            // The entries and the touch filter call the touch window: expand them with the template.
            let template = DAYS_AND_TOUCHES.replace("{{marks}}", &entries.join(", ")).replace("{{last_touch}}", &last_touch);
            marks.render(&template, &[("day", &day_of(column, *day, marks.tz)), ("rows", rows)])
        })
        .collect()
}

/// Statements as one trigger body (`NULL;` when there are none).
fn statements(body: &[String]) -> String {
    if body.is_empty() { "NULL;".to_string() } else { body.join("\n    ") }
}

/// The statement that records what `rule` makes dirty for operation `op`;
/// with the live `key` of a day rule, the key values of the rows too, and
/// for a `small` statement's touches, their users.
fn mark(op: &str, owner: &Owner, rule: DirtyRule, marks: &Marks, small: bool, key: Option<LiveKey>) -> Option<String> {
    if op == "truncate" {
        let each = owner.names().into_iter().map(|name| render(EVERYTHING, &[("aggregate", &quote_literal(name))]));
        return Some(each.collect::<Vec<_>>().join("\n    "));
    }
    // Only day rules without a live key are ever shared.
    let (name, members) = owner.columns();
    let rows = match op {
        "insert" => "new_rows",
        "delete" => "old_rows",
        _ => "(SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows)",
    };
    match rule {
        DirtyRule::DayOf { column, day, .. } => {
            let day = day_of(column, day, marks.tz);
            Some(match key {
                Some(key) => marks.render(
                    KEYED_DAYS,
                    &[("aggregate", &name), ("day", &day), ("key", &key.expression("r")), ("rows", rows)],
                ),
                None => {
                    marks.render(DAYS, &[("aggregate", &name), ("members", &members), ("day", &day), ("rows", rows)])
                }
            })
        }
        DirtyRule::TouchWindow => {
            // On UPDATE only rows whose touch-defining columns changed matter.
            let rows = if op == "update" { render(CHANGED_TOUCHES, &[]) } else { rows.to_string() };
            let template = if small { KEYED_TOUCHES } else { TOUCHES };
            Some(marks.render(template, &[("aggregate", &name), ("rows", &rows)]))
        }
        DirtyRule::Joined { column, fact_column, watched, .. } => {
            let column = quote_ident_if_needed(column);
            let rows = match (op, watched.is_empty()) {
                (_, true) => rows.to_string(),
                ("update", false) => {
                    let side = |alias: &str| {
                        watched.iter().map(|c| format!("{alias}.{}", quote_ident_if_needed(c))).collect::<Vec<_>>()
                    };
                    render(
                        CHANGED_JOINED,
                        &[("column", &column), ("old", &side("o").join(", ")), ("new", &side("n").join(", "))],
                    )
                }
                // Only updates of the watched columns change what joins.
                _ => return None,
            };
            Some(render(
                JOINED,
                &[("aggregate", &name), ("via", &quote_literal(fact_column)), ("column", &column), ("rows", &rows)],
            ))
        }
    }
}

/// What TRUNCATE of one partition of `marketing.events` dirties.
fn truncate_partition_function(base: &str, watchers: &[(Owner, DirtyRule)], marks: &Marks) -> String {
    let each: Vec<(&str, DirtyRule)> =
        watchers.iter().flat_map(|(owner, rule)| owner.names().into_iter().map(move |name| (name, *rule))).collect();
    let everything: Vec<String> =
        each.iter().map(|(aggregate, _)| render(EVERYTHING, &[("aggregate", &quote_literal(aggregate))])).collect();
    let month: Vec<String> = each
        .iter()
        .map(|(aggregate, rule)| {
            let template = if *rule == DirtyRule::TouchWindow { PARTITION_TOUCHES } else { PARTITION_DAYS };
            marks.render(template, &[("aggregate", &quote_literal(aggregate))])
        })
        .collect();
    render(
        TRUNCATE_PARTITION,
        &[
            ("function", &format!("tally.{base}_truncate_partition")),
            ("everything", &everything.join("\n        ")),
            ("marks", &month.join("\n    ")),
        ],
    )
}

/// The day of row `r`'s `column` ([`DayIn`]; `tz`: the reporting timezone literal).
fn day_of(column: &str, day: DayIn, tz: &str) -> String {
    day.of(&format!("r.{}", quote_ident_if_needed(column)), tz)
}

/// The name the trigger functions of `table` start with (in schema
/// `tally`): `invalidate_<table>` for tally's own `marketing` tables; for
/// a user's table, its schema and name reduced to plain characters, with a
/// hash of the exact name, so that two tables never share functions and
/// every name fits PostgreSQL's 63 characters.
pub(super) fn function_base(table: &str) -> String {
    if let Some(name) = table.strip_prefix("marketing.").filter(|n| !n.contains('.')) {
        return format!("invalidate_{name}");
    }
    let plain: String =
        table.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).take(24).collect();
    let hash = table.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("invalidate_{plain}_{:08x}", hash as u32)
}

/// A `schema.table` name, each part quoted.
pub fn qualified(table: &str) -> String {
    table.split('.').map(quote_ident).collect::<Vec<_>>().join(".")
}

mod owners;
#[cfg(test)]
mod tests;
