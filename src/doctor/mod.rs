//! The query doctor: `tally explain` runs a statement under `EXPLAIN
//! (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)` in a transaction that is always
//! rolled back, walks the plan and reports the warning signs with the index,
//! statistics or setting that fixes each; `tally doctor` audits the indexes
//! that exist (unused, duplicate, redundant, invalid).
//!
//! The analysis is pure (a plan and a [`Catalog`] in, [`Finding`]s out) and
//! unit-tested on stored plans; this module does the database part.
//!
//! Where each warning sign of `tally explain` is found (the detectors, by
//! what they look at; `detect/walk.rs` visits the plan and calls them):
//!
//! | kind | looks at | detector |
//! |---|---|---|
//! | `seq_scan` | a large table read whole to keep few rows | `detect/scans.rs` |
//! | `filter_after_index` | an index scan whose filter discards most of what it found | `detect/scans.rs` |
//! | `partitions_not_pruned` | every partition read despite a filter on the partition key | `detect/partitions.rs` |
//! | `nested_loop` | a join comparing many row pairs through a sequential scan | `detect/joins.rs` |
//! | `spill` | a sort or hash that went to disk | `detect/memory.rs` |
//! | `misestimate` | a row estimate off by 10x or more, where the error starts | `detect/estimates.rs` |
//! | `use_aggregate` | raw events aggregated where a `reporting` aggregate holds the answer | `detect/aggregates/` |
//!
//! Around them: `finding.rs` the finding types, `plan.rs` reads the JSON
//! plan, `predicate.rs` splits filters into index shapes, `index.rs` and
//! `fixes.rs` build the fixes, `catalog.rs` loads the tables a plan reads,
//! `numbers.rs` writes numbers for people, `render.rs` prints the reports.
//! The index audit of `tally doctor` is [`audit`].

pub mod audit;
mod catalog;
mod detect;
mod finding;
mod fixes;
mod index;
mod numbers;
mod plan;
mod predicate;
mod render;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;
use sqlx::{AssertSqlSafe, PgPool};

pub use catalog::{Catalog, Index, Table};
pub use finding::{Finding, Kind};
pub use plan::{Buffers, Node};
pub use render::{render_audit, render_report};

use crate::error::Error;

/// How to run the statement.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    /// Execute the statement (inside the rolled-back transaction); `false`
    /// plans it only.
    pub analyze: bool,
    /// Settings for this statement only (`SET LOCAL`), e.g. `work_mem`.
    pub settings: Vec<(String, String)>,
    /// `statement_timeout` of the statement.
    pub timeout: Duration,
    /// `reporting_timezone` of the config: the aggregates' days begin at
    /// midnight there, which decides whether they answer a query's days.
    pub reporting_timezone: chrono_tz::Tz,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            analyze: true,
            settings: Vec::new(),
            timeout: Duration::from_secs(60),
            reporting_timezone: chrono_tz::Tz::UTC,
        }
    }
}

/// What `tally explain` found: the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The statement as examined.
    pub query: String,
    /// Whether the statement was executed (ANALYZE) rather than only planned.
    pub analyzed: bool,
    pub planning_time_ms: Option<f64>,
    pub execution_time_ms: Option<f64>,
    /// Settings applied for the statement (`--set`).
    pub settings: Vec<(String, String)>,
    /// Warning signs, most time-consuming first.
    pub findings: Vec<Finding>,
    /// The plan as PostgreSQL returned it (the `Plan` of `FORMAT JSON`).
    pub plan: serde_json::Value,
}

/// Parses a `--set NAME=VALUE` argument.
pub fn parse_setting(text: &str) -> Result<(String, String), Error> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.trim().to_string())),
        _ => Err(Error::Usage(format!("--set takes NAME=VALUE (e.g. --set work_mem=64MB), not `{text}`"))),
    }
}

/// The statement without surrounding blanks and trailing semicolons.
fn statement(sql: &str) -> Result<String, Error> {
    let trimmed = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if trimmed.is_empty() {
        return Err(Error::Usage("no statement to explain: pass it as an argument, or with --file FILE|-".into()));
    }
    Ok(trimmed.to_string())
}

/// Explains `sql` and analyzes its plan; nothing the statement does is kept.
pub async fn explain(pool: &PgPool, sql: &str, options: &ExplainOptions) -> Result<Report, Error> {
    let query = statement(sql)?;
    let mut tx = pool.begin().await.map_err(|e| Error::database("starting the explain transaction", &e))?;
    let result = explain_in(&mut tx, &query, options).await;
    // Always rolled back: an INSERT, UPDATE or DELETE is measured, never kept.
    let rolled_back = tx.rollback().await;
    let report = result?;
    rolled_back.map_err(|e| Error::database("rolling back the explained statement", &e))?;
    Ok(report)
}

async fn explain_in(conn: &mut sqlx::PgConnection, query: &str, options: &ExplainOptions) -> Result<Report, Error> {
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", options.timeout.as_millis()))
        .execute(&mut *conn)
        .await
        .map_err(|e| Error::database("setting statement_timeout", &e))?;
    for (name, value) in &options.settings {
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(|e| Error::Usage(format!("--set {name}={value}: {}", crate::db::describe(&e))))?;
    }
    let explain = format!(
        "EXPLAIN (ANALYZE {analyze}, BUFFERS {analyze}, VERBOSE, FORMAT JSON) {query}",
        analyze = if options.analyze { "true" } else { "false" }
    );
    // A prepared statement: PostgreSQL refuses more than one command in it.
    let output: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(explain))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| statement_error(&e, options))?;
    let top = output.get(0).ok_or_else(|| Error::runtime("explain", "PostgreSQL returned an empty plan"))?;
    let plan_json = top.get("Plan").cloned().ok_or_else(|| Error::runtime("explain", "the plan has no `Plan`"))?;
    let plan = Node::new(&plan_json);
    let mut relations: Vec<String> =
        std::iter::once(plan).chain(plan.descendants()).filter_map(|n| n.relation()).collect();
    relations.sort();
    relations.dedup();
    let catalog = Catalog::load(conn, &relations, options.reporting_timezone)
        .await
        .map_err(|e| Error::database("reading the catalog of the plan", &e))?;
    let findings = detect::analyze(&plan, &catalog);
    let millis = |key: &str| top.get(key).and_then(serde_json::Value::as_f64);
    Ok(Report {
        query: query.to_string(),
        analyzed: options.analyze,
        planning_time_ms: millis("Planning Time"),
        execution_time_ms: millis("Execution Time"),
        settings: options.settings.clone(),
        findings,
        plan: plan_json,
    })
}

/// The statement's own errors say what to change (exit 2); the rest are
/// runtime failures.
fn statement_error(error: &sqlx::Error, options: &ExplainOptions) -> Error {
    let described = crate::db::describe(error);
    let code = error.as_database_error().and_then(|d| d.code()).map(|c| c.to_string()).unwrap_or_default();
    match code.as_str() {
        "42601" if described.contains("multiple commands") => {
            Error::Usage("tally explain takes one statement; run each statement separately".into())
        }
        "08P01" if described.contains("bind message supplies") => Error::Usage(
            "the statement has parameters ($1, ...): tally explain runs it as written, so put constants where the \
             parameters are"
                .into(),
        ),
        "42P02" => Error::Usage(format!(
            "{described}; tally explain runs the statement as written: put constants where the parameters are"
        )),
        "57014" => {
            let limit = match options.settings.iter().find(|(name, _)| name == "statement_timeout") {
                Some((_, value)) => format!("statement_timeout {value} given with --set"),
                None => format!("{} timeout (--timeout)", humantime::format_duration(options.timeout)),
            };
            Error::runtime(
                "explain",
                format!(
                    "the statement ran longer than the {limit} and was cancelled (nothing was kept); allow more \
                     time, or plan it only with --no-analyze"
                ),
            )
        }
        // The statement's own errors: syntax, data, constraints, raised exceptions, unsupported features.
        c if ["42", "22", "23", "P0", "0A"].iter().any(|class| c.starts_with(class)) => {
            Error::Usage(format!("the statement failed: {described}"))
        }
        _ => Error::runtime("running the statement under EXPLAIN", described),
    }
}
