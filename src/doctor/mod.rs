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
//! `numbers.rs` writes numbers for people, `render.rs` prints the reports,
//! `error.rs` says why a run failed ([`DoctorError`]). The index audit of
//! `tally doctor` is [`audit`], with its own findings
//! ([`audit::AuditFinding`]: `audit/rules.rs` builds one per problem).

pub mod audit;
mod candidates;
mod catalog;
mod detect;
mod error;
mod finding;
mod fixes;
mod index;
mod numbers;
mod plan;
mod predicate;
mod render;
mod statement;
#[cfg(test)]
mod tests;
mod verify;
pub mod workload;

use std::time::Duration;

use serde::Serialize;
use sqlx::{AssertSqlSafe, PgPool};

pub use catalog::{Catalog, Index, Table};
pub use error::DoctorError;
pub use finding::{Finding, Kind};
pub use plan::{Buffers, Node};
pub use render::{render_audit, render_report};
pub use verify::{HYPOPG_HINT, Suggestion, Verification};

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
    /// The smallest cut of the estimated cost (0.5: a half) a hypothetical
    /// index must make to be suggested.
    pub min_cost_cut: f64,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions {
            analyze: true,
            settings: Vec::new(),
            timeout: Duration::from_secs(60),
            reporting_timezone: chrono_tz::Tz::UTC,
            min_cost_cut: 0.5,
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
    /// How index suggestions were checked.
    pub verification: Verification,
    /// Indexes to create, verified with hypopg (best first), and the
    /// unverified ones hypopg cannot simulate.
    pub suggestions: Vec<Suggestion>,
    /// The plan as PostgreSQL returned it (the `Plan` of `FORMAT JSON`).
    pub plan: serde_json::Value,
}

/// Parses a `--set NAME=VALUE` argument.
pub fn parse_setting(text: &str) -> Result<(String, String), DoctorError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.trim().to_string())),
        _ => Err(DoctorError::SettingSyntax(text.to_string())),
    }
}

/// The statement without surrounding blanks and trailing semicolons.
fn statement(sql: &str) -> Result<String, DoctorError> {
    let trimmed = sql.trim().trim_end_matches(|c: char| c == ';' || c.is_whitespace());
    if trimmed.is_empty() {
        return Err(DoctorError::NoStatement);
    }
    Ok(trimmed.to_string())
}

/// Explains `sql` and analyzes its plan; nothing the statement does is kept.
pub async fn explain(pool: &PgPool, sql: &str, options: &ExplainOptions) -> Result<Report, DoctorError> {
    let query = statement(sql)?;
    let mut conn = pool.acquire().await.map_err(|e| DoctorError::database("connecting", &e))?;
    // Hypothetical indexes outlive a rollback: this session is never reused.
    conn.close_on_drop();
    let mut tx = sqlx::Acquire::begin(&mut *conn)
        .await
        .map_err(|e| DoctorError::database("starting the explain transaction", &e))?;
    let result = explain_in(&mut tx, &query, options).await;
    // Always rolled back: an INSERT, UPDATE or DELETE is measured, never kept.
    let rolled_back = tx.rollback().await;
    let report = result?;
    rolled_back.map_err(|e| DoctorError::database("rolling back the explained statement", &e))?;
    Ok(report)
}

async fn explain_in(
    conn: &mut sqlx::PgConnection,
    query: &str,
    options: &ExplainOptions,
) -> Result<Report, DoctorError> {
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", options.timeout.as_millis()))
        .execute(&mut *conn)
        .await
        .map_err(|e| DoctorError::database("setting statement_timeout", &e))?;
    for (name, value) in &options.settings {
        sqlx::query("SELECT set_config($1, $2, true)")
            .bind(name)
            .bind(value)
            .execute(&mut *conn)
            .await
            .map_err(|e| DoctorError::setting_refused(name, value, &e))?;
    }
    let explain = format!(
        "EXPLAIN (ANALYZE {analyze}, BUFFERS {analyze}, VERBOSE, FORMAT JSON) {query}",
        analyze = if options.analyze { "true" } else { "false" }
    );
    // A prepared statement: PostgreSQL refuses more than one command in it.
    let output: serde_json::Value = sqlx::query_scalar(AssertSqlSafe(explain))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| DoctorError::from_statement(&e, options))?;
    let top = output.get(0).ok_or(DoctorError::UnexpectedPlan("PostgreSQL returned an empty plan"))?;
    let plan_json = top.get("Plan").cloned().ok_or(DoctorError::UnexpectedPlan("the plan has no `Plan`"))?;
    let plan = Node::new(&plan_json);
    let mut relations: Vec<String> =
        std::iter::once(plan).chain(plan.descendants()).filter_map(|n| n.relation()).collect();
    relations.sort();
    relations.dedup();
    let catalog = Catalog::load(conn, &relations, options.reporting_timezone)
        .await
        .map_err(|e| DoctorError::database("reading the catalog of the plan", &e))?;
    let mut findings = detect::analyze(&plan, &catalog);
    let (verification, suggestions) = suggest(conn, query, &plan, &catalog, &mut findings, options.min_cost_cut)
        .await
        .map_err(|e| DoctorError::database("trying hypothetical indexes", &e))?;
    let millis = |key: &str| top.get(key).and_then(serde_json::Value::as_f64);
    Ok(Report {
        query: query.to_string(),
        analyzed: options.analyze,
        planning_time_ms: millis("Planning Time"),
        execution_time_ms: millis("Execution Time"),
        settings: options.settings.clone(),
        findings,
        verification,
        suggestions,
        plan: plan_json,
    })
}

/// The verified index suggestions for `query`, where the server has hypopg;
/// findings then leave index advice to them. Without hypopg the findings'
/// own suggestions stand, marked unverified.
async fn suggest(
    conn: &mut sqlx::PgConnection,
    query: &str,
    plan: &Node<'_>,
    catalog: &Catalog,
    findings: &mut [Finding],
    min_cost_cut: f64,
) -> Result<(Verification, Vec<Suggestion>), sqlx::Error> {
    if !verify::hypopg(conn).await? {
        let note = format!("index suggestions below are not verified: to verify them, {HYPOPG_HINT}");
        return Ok((Verification { method: "none", min_cost_cut, candidates: 0, note: Some(note) }, Vec::new()));
    }
    let candidates = candidates::generate(&statement::read(query), plan, catalog, findings);
    let suggestions = verify::run(conn, query, &candidates, catalog, min_cost_cut).await?;
    for finding in findings.iter_mut() {
        let creates_index = |s: &String| s.starts_with("CREATE INDEX") || s.starts_with("ALTER INDEX");
        if finding.sql.is_empty() || !finding.sql.iter().all(creates_index) {
            continue;
        }
        if finding.creates.iter().any(|(_, w)| w.method != "btree") {
            finding.fix.push_str(" (not verified: hypopg cannot simulate GIN indexes)");
            continue;
        }
        let table = finding.relation.as_deref().and_then(|r| catalog.target(r)).map(|t| t.display_name());
        let served = suggestions
            .iter()
            .find(|s| s.verified && table.as_ref().is_some_and(|t| s.index.starts_with(&format!("{t} "))));
        (finding.fix, finding.sql) = match served {
            Some(s) if s.sql == finding.sql => (format!("{} (verified with hypopg)", finding.fix), s.sql.clone()),
            Some(s) => (format!("create the index verified with hypopg: {}", s.index), s.sql.clone()),
            None => (
                format!(
                    "no index tried on {} cut the estimated cost by at least {:.0}% (hypopg, {} candidates): an index is                  not the fix here",
                    table.as_deref().unwrap_or("this table"),
                    min_cost_cut * 100.0,
                    candidates.len()
                ),
                Vec::new(),
            ),
        };
    }
    let verification = Verification { method: "hypopg", min_cost_cut, candidates: candidates.len(), note: None };
    Ok((verification, suggestions))
}
