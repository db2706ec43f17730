//! Aggregates declared in the config (SPEC §10, docs/your-aggregates.md):
//! `[aggregates.NAME] sql = "file.sql"`, one SELECT over the user's own
//! tables. Its key, day column, fact table and joins are read from the SQL
//! ([`read`]); from them come the same [`Aggregate`] a built-in one is, its
//! dirty rules (the fact table's day, and the days of the fact rows a joined
//! table's row joins to), and the scoped SELECT of an incremental rewrite,
//! written by the parser rather than by a placeholder in the user's text.
//!
//! Who owns what: a declared aggregate is built once per configuration load
//! and lives for the process (the registry hands out `&'static Aggregate`s).

mod from;
mod read;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use sqlparser::ast::{BinaryOperator, Expr, Ident, SetExpr};

pub use read::{Day, Join, Problem, Reading, read};

use super::{Aggregate, DayIn, DirtyRule, Kind, Period};
use crate::db::quote_ident;

/// The identifier where a rewrite's scope goes, replaced after printing.
const SCOPE_SENTINEL: &str = "tally scope 7f3a";

/// A declared aggregate's definition as tally read it.
#[derive(Debug)]
pub struct Declared {
    /// The SQL file, as configured (resolved against the config's directory).
    pub file: PathBuf,
    pub reading: Reading,
}

impl Declared {
    /// The SELECT as tally runs it, with `scope` (a condition on the fact
    /// table that tally built) ANDed to its WHERE clause.
    pub fn scoped(&self, scope: &str) -> String {
        let mut query = self.reading.query.clone();
        if let SetExpr::Select(select) = query.body.as_mut() {
            let marker = Expr::Identifier(Ident::with_quote('"', SCOPE_SENTINEL));
            select.selection = Some(match select.selection.take() {
                Some(existing) => Expr::BinaryOp {
                    left: Box::new(Expr::Nested(Box::new(existing))),
                    op: BinaryOperator::And,
                    right: Box::new(marker),
                },
                None => marker,
            });
        }
        query.to_string().replacen(&format!("\"{SCOPE_SENTINEL}\""), &format!("({scope})"), 1)
    }

    /// The SQL literal of the day's zone, for a timestamp day column.
    pub fn zone_literal(&self) -> Option<String> {
        self.reading.day.zone.as_deref().map(crate::db::quote_literal)
    }
}

/// What is wrong with a declaration: the file and the problem in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclareError {
    pub file: PathBuf,
    pub problem: Problem,
}

impl std::fmt::Display for DeclareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.problem)
    }
}

/// Whether a declared aggregate's name is one tally can derive its other
/// names from (`reporting.NAME_live`, `tally.NAME_live_rows`, ...): a
/// lowercase unquoted identifier of at most 40 characters.
pub fn check_name(name: &str) -> Result<(), String> {
    let plain = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !plain || name.len() > 40 {
        return Err(format!(
            "`{name}` cannot name an aggregate: use lowercase letters, digits and `_`, starting with a letter, at most 40 characters"
        ));
    }
    if name.ends_with("_live") {
        return Err(format!("`{name}` ends in `_live`, the suffix of live views: choose another name"));
    }
    Ok(())
}

/// Reads `file` and builds the aggregate `name` from it; `key`: the
/// configured key; `incremental`: whether it must be maintainable
/// incrementally; `is_aggregate`: whether a name in `reporting` is one of
/// tally's aggregates (it is then refreshed first).
pub fn declare(
    name: &str,
    file: &Path,
    key: Option<&[String]>,
    incremental: bool,
    is_aggregate: &dyn Fn(&str) -> bool,
) -> Result<&'static Aggregate, DeclareError> {
    let fail = |problem: Problem| DeclareError { file: file.to_path_buf(), problem };
    let text = std::fs::read_to_string(file).map_err(|e| {
        fail(Problem { message: format!("cannot be read ({e}); the path is relative to the config file"), place: None })
    })?;
    let reading = read(&text, key).map_err(fail)?;
    if incremental && let Some(problem) = &reading.not_incremental {
        return Err(fail(problem.clone()));
    }
    let aggregate_of = |table: &str| table.strip_prefix("reporting.").filter(|n| is_aggregate(n)).map(str::to_string);
    let mut inputs: Vec<String> = Vec::new();
    for table in std::iter::once(&reading.fact).chain(reading.joins.iter().map(|j| &j.table)) {
        if let Some(input) = aggregate_of(table)
            && !inputs.contains(&input)
        {
            inputs.push(input);
        }
    }
    let depends_on: Vec<&'static str> = inputs.iter().map(|input| leak(input)).collect();
    if incremental && let Some(join) = reading.joins.iter().find(|j| aggregate_of(&j.table).is_some()) {
        return Err(fail(Problem {
            message: format!(
                "joins the aggregate `{}`: its rewrites mark no day of this one; read it as the fact table, or use \
                 mode = \"concurrently\"",
                join.table
            ),
            place: None,
        }));
    }
    let day = match &reading.day.zone {
        Some(zone) => DayIn::Zone(leak(zone)),
        None => DayIn::Date,
    };
    let fact = leak(&reading.fact);
    let fact_day = leak(&reading.day.column);
    // A rollup of an aggregate gets its marks from that aggregate's
    // refreshes ([`super::hierarchy`]), not from triggers.
    let mut rules: Vec<DirtyRule> = Vec::new();
    if aggregate_of(&reading.fact).is_none() {
        rules.push(DirtyRule::DayOf { table: fact, column: fact_day, day });
        for join in &reading.joins {
            rules.push(DirtyRule::Joined {
                table: leak(&join.table),
                column: leak(&join.column),
                fact,
                fact_column: leak(&join.fact_column),
                fact_day,
                day,
                watched: &[],
            });
        }
    }
    let scope_column = leak(&format!("{}.{}", quote_ident(&reading.day.alias), quote_ident(&reading.day.column)));
    let sql = leak(&reading.query.to_string());
    let key: Vec<&'static str> = reading.key.iter().map(|k| leak(k)).collect();
    let declared = Box::leak(Box::new(Declared { file: file.to_path_buf(), reading }));
    Ok(Box::leak(Box::new(Aggregate {
        name: leak(name),
        kind: Kind::Rollup,
        description: leak(&format!("declared in {}", file.display())),
        sql,
        key: Box::leak(key.into_boxed_slice()),
        depends_on: Box::leak(depends_on.into_boxed_slice()),
        scope_column,
        scope_is_date: declared.reading.day.zone.is_none(),
        dirtied_by: Box::leak(rules.into_boxed_slice()),
        live_key: None,
        period: Period::Day,
        needs_sketches: false,
        declared: Some(declared),
    })))
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_string().into_boxed_str())
}

/// Checks, against the database, what the SQL alone cannot say: that each
/// declared aggregate's day column is a day (`date`, or `timestamptz` with
/// `AT TIME ZONE`). A fact table that does not exist is left to the
/// refresh, which fails for that aggregate alone; a column of the wrong
/// type is a definition error, given with the file and the column.
pub async fn check_days(pool: &sqlx::PgPool, config: &crate::config::Config) -> Result<(), String> {
    let mut problems = Vec::new();
    for aggregate in config.registry() {
        let Some(declared) = aggregate.declared else { continue };
        let day = &declared.reading.day;
        let (exists, found): (bool, Option<String>) = sqlx::query_as(
            "SELECT to_regclass($1) IS NOT NULL,
                    (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute AS a
                     WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped)",
        )
        .bind(super::triggers::qualified(&declared.reading.fact))
        .bind(&day.column)
        .fetch_one(pool)
        .await
        .map_err(|e| crate::db::describe(&e))?;
        let wanted = if day.zone.is_some() { "timestamp with time zone" } else { "date" };
        let problem = match (exists, found) {
            (false, _) => continue,
            (true, None) => format!("{} has no column `{}`", declared.reading.fact, day.column),
            (true, Some(found)) if found != wanted => format!(
                "its day column `{}.{}` is {found}, not {wanted}: {}",
                day.alias,
                day.column,
                match day.zone {
                    Some(_) =>
                        "AT TIME ZONE makes a day of a timestamptz only (a timestamp without time zone \
                                would depend on each session's TimeZone)",
                    None => "write (t.col AT TIME ZONE 'Zone')::date for a timestamptz column, or name a date column",
                }
            ),
            (true, Some(_)) => continue,
        };
        problems.push(format!("aggregate `{}` ({}): {problem}", aggregate.name, declared.file.display()));
    }
    if problems.is_empty() { Ok(()) } else { Err(problems.join("; ")) }
}
