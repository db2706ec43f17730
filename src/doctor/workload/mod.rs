//! `tally doctor --workload`: the indexes that serve the statements taking
//! the most time, from `pg_stat_statements`, as one small set rather than one
//! index per statement, weighed against what they cost the tables' writers.
//!
//! 1. The top statements by total execution time in this database (SELECT,
//!    UPDATE, DELETE; tally's own bookkeeping left out) are planned
//!    generically ([`generic`]).
//! 2. Their candidates ([`super::candidates`], from each statement and its
//!    plan) are pooled; the greedy choice ([`choose`]) adds, one at a time,
//!    the candidate with the largest estimated time saved across all
//!    statements (calls × mean time × the cut of the estimated cost, planned
//!    with hypopg together with the indexes already chosen) net of its cost
//!    to writers, while that is positive. A composite that serves two
//!    statements is chosen once, and the narrower index it makes useless is
//!    never added.
//! 3. Existing indexes a chosen one makes redundant (a plain B-tree whose
//!    keys lead the chosen one's) are listed with their `DROP`.

mod choose;
mod generic;
mod render;

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;

pub use render::render_workload;

use super::DoctorError;
use super::catalog::Catalog;
use super::plan::Node;

/// Estimated time one index entry costs a writer: 8.1 s more for 1M rows
/// into a table with 4 indexes than into one without (BENCHMARKS.md, raw
/// COPY), about 2 µs per row and index.
pub const UPKEEP_MS_PER_ROW: f64 = 0.002;

/// How to run the workload plan.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// Statements read from pg_stat_statements, by total time.
    pub top: u32,
    /// The smallest cut of a statement's estimated cost that counts as serving it.
    pub min_cost_cut: f64,
}

/// One statement of the workload.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    pub query: String,
    pub calls: i64,
    pub mean_ms: f64,
    pub total_ms: f64,
    /// Estimated cost of its generic plan now, and with the proposed indexes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_after: Option<f64>,
    /// Why it could not be planned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_planned: Option<String>,
}

/// One proposed index.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub index: String,
    /// Statements (1-based positions in `statements`) it serves.
    pub serves: Vec<usize>,
    /// Estimated statement time saved over the statistics' period, ms.
    pub saved_ms: f64,
    /// The table's writes per second (inserts and non-HOT updates), and its indexes now.
    pub table_writes_per_s: f64,
    pub table_indexes: i64,
    /// Estimated time writers spend per second keeping it up, ms.
    pub write_cost_ms_per_s: f64,
    pub sql: Vec<String>,
}

/// A candidate left out because its writers would pay more than its readers save.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub index: String,
    pub saved_ms_per_s: f64,
    pub write_cost_ms_per_s: f64,
}

/// An existing index a proposed one makes redundant.
#[derive(Debug, Clone, Serialize)]
pub struct Redundant {
    pub index: String,
    pub by: String,
    pub sql: String,
}

/// What `tally doctor --workload` found: the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// Seconds of statistics the times and rates cover.
    pub period_s: f64,
    pub statements: Vec<Statement>,
    pub proposals: Vec<Proposal>,
    pub rejected_for_writes: Vec<Rejected>,
    pub redundant: Vec<Redundant>,
    /// Candidates tried.
    pub candidates: usize,
    /// Estimated time saved by the whole set, and the statements' total time, ms.
    pub saved_ms: f64,
    pub total_ms: f64,
}

/// How to load pg_stat_statements, for the error that says it is missing.
pub const PG_STAT_STATEMENTS_HINT: &str = "add pg_stat_statements to shared_preload_libraries in postgresql.conf \
     (shared_preload_libraries = 'pg_stat_statements'), restart PostgreSQL, and run CREATE EXTENSION \
     pg_stat_statements in this database (as a superuser), then let the workload run for a while";

/// Plans the workload.
pub async fn run(pool: &PgPool, options: &WorkloadOptions) -> Result<WorkloadReport, DoctorError> {
    let failed = |context: &'static str| move |e: sqlx::Error| DoctorError::database(context, &e);
    let mut conn = pool.acquire().await.map_err(failed("connecting"))?;
    // Hypothetical indexes and prepared statements stay with the session: never reuse it.
    conn.close_on_drop();
    let loaded: String = sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
        .fetch_one(&mut *conn)
        .await
        .map_err(failed("reading shared_preload_libraries"))?;
    if !loaded.split(',').any(|l| l.trim().trim_matches('"') == "pg_stat_statements") {
        return Err(DoctorError::WorkloadUnavailable(format!(
            "pg_stat_statements is not loaded (shared_preload_libraries = '{loaded}'): {PG_STAT_STATEMENTS_HINT}"
        )));
    }
    if let Err(e) = sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(&mut *conn).await {
        return Err(DoctorError::WorkloadUnavailable(format!(
            "the pg_stat_statements extension is not created in this database and tally could not create it ({}): \
             {PG_STAT_STATEMENTS_HINT}",
            crate::db::describe(&e)
        )));
    }
    let mut tx = sqlx::Acquire::begin(&mut *conn).await.map_err(failed("starting the workload transaction"))?;
    if !super::verify::hypopg(&mut tx).await.map_err(failed("looking for hypopg"))? {
        return Err(DoctorError::WorkloadUnavailable(format!(
            "the workload plan needs hypothetical indexes: {}",
            super::verify::HYPOPG_HINT
        )));
    }
    let period_s: f64 = sqlx::query_scalar(
        "SELECT greatest(extract(epoch FROM now() - coalesce((SELECT stats_reset FROM pg_stat_statements_info),
                                                             pg_postmaster_start_time())), 1)::float8",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(failed("reading the statistics' age"))?;
    let rows: Vec<(String, i64, f64, f64)> =
        sqlx::query_as(include_str!("../../../sql/doctor/workload_statements.sql"))
            .bind(i64::from(options.top))
            .fetch_all(&mut *tx)
            .await
            .map_err(failed("reading pg_stat_statements"))?;
    let mut statements: Vec<Statement> = rows
        .into_iter()
        .map(|(query, calls, mean_ms, total_ms)| Statement {
            query,
            calls,
            mean_ms,
            total_ms,
            cost_before: None,
            cost_after: None,
            not_planned: None,
        })
        .collect();
    let chosen =
        choose::choose(&mut tx, &mut statements, period_s, options).await.map_err(failed("planning the workload"))?;
    // Rolled back: a hypopg created here goes with it.
    tx.rollback().await.map_err(failed("rolling back"))?;
    let total_ms = statements.iter().map(|s| s.total_ms).sum();
    let saved_ms = chosen.proposals.iter().map(|p| p.saved_ms).sum();
    Ok(WorkloadReport {
        period_s,
        statements,
        proposals: chosen.proposals,
        rejected_for_writes: chosen.rejected,
        redundant: chosen.redundant,
        candidates: chosen.candidates,
        saved_ms,
        total_ms,
    })
}

/// The relations a plan reads.
fn relations(plan: &Node) -> Vec<String> {
    let mut relations: Vec<String> =
        std::iter::once(*plan).chain(plan.descendants()).filter_map(|n| n.relation()).collect();
    relations.sort();
    relations.dedup();
    relations
}

/// Loads the catalog for the relations of `plans`.
async fn catalog(conn: &mut sqlx::PgConnection, plans: &[serde_json::Value]) -> Result<Catalog, sqlx::Error> {
    let mut all: Vec<String> = plans.iter().flat_map(|p| relations(&Node::new(p))).collect();
    all.sort();
    all.dedup();
    Catalog::load(conn, &all, chrono_tz::Tz::UTC).await
}

/// `Duration` of a period in seconds, for people.
fn period(seconds: f64) -> Duration {
    Duration::from_secs(seconds.max(0.0) as u64)
}
