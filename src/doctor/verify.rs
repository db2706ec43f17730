//! Proving an index suggestion before printing it: each candidate
//! ([`super::candidates`]) is created hypothetically with hypopg, the
//! statement is planned again (`EXPLAIN`, never executed), and only
//! candidates the planner uses and that cut its estimated cost by at least
//! `min_cost_cut` (a half by default) are suggested, best first.
//!
//! Hypothetical indexes live in the session's memory, not in the catalog, and
//! survive a rollback: each is dropped right after its plan, and the doctor's
//! connection is closed, never returned to the pool, so no later statement
//! on it can be planned with one. Costs are the planner's estimates:
//! `docs/query-doctor.md` says what they can and cannot tell.

use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection};

use super::candidates::{self, Candidate};
use super::catalog::Catalog;
use super::index;
use super::plan::Node;

/// How to get verified suggestions where the server has no hypopg.
pub const HYPOPG_HINT: &str = "install hypopg (Debian: apt install postgresql-15-hypopg) and run CREATE EXTENSION \
                               hypopg in this database as a superuser";

/// One suggested index, verified or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suggestion {
    /// `schema.table (keys) INCLUDE (...) WHERE ...`.
    pub index: String,
    /// Created hypothetically and shown to cut the estimated cost.
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_before: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_after: Option<f64>,
    /// The plan node the index replaces, and the one that uses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_after: Option<String>,
    /// Why it is not verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Statements that create it (`CREATE INDEX CONCURRENTLY`, or the
    /// per-partition recipe on a partitioned table).
    pub sql: Vec<String>,
}

/// How the suggestions were checked (the `verification` of `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verification {
    /// `hypopg`, or `none` (suggestions are the findings' own, unverified).
    pub method: &'static str,
    /// The smallest cut of the estimated cost a suggestion must make.
    pub min_cost_cut: f64,
    /// Candidates tried.
    pub candidates: usize,
    /// Why there is no verification, and how to get it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Whether hypopg can be used on `conn`: its functions are visible, or the
/// extension can be created in the caller's (rolled-back) transaction.
pub async fn hypopg(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let visible =
        "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'hypopg_create_index' AND pg_function_is_visible(oid))";
    if sqlx::query_scalar::<_, bool>(visible).fetch_one(&mut *conn).await? {
        return Ok(true);
    }
    let available: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')")
            .fetch_one(&mut *conn)
            .await?;
    if !available {
        return Ok(false);
    }
    // Created inside the explain transaction, which is rolled back: nothing stays.
    sqlx::raw_sql("SAVEPOINT tally_hypopg").execute(&mut *conn).await?;
    match sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS hypopg").execute(&mut *conn).await {
        Ok(_) => {
            sqlx::raw_sql("RELEASE SAVEPOINT tally_hypopg").execute(&mut *conn).await?;
            sqlx::query_scalar::<_, bool>(visible).fetch_one(&mut *conn).await
        }
        Err(_) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT tally_hypopg").execute(&mut *conn).await?;
            Ok(false)
        }
    }
}

/// The planner's estimated total cost of `query`, and its plan.
async fn planned(conn: &mut PgConnection, query: &str) -> Result<(f64, serde_json::Value), sqlx::Error> {
    let output: serde_json::Value =
        sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (VERBOSE, FORMAT JSON) {query}")))
            .fetch_one(&mut *conn)
            .await?;
    let plan = output.get(0).and_then(|top| top.get("Plan")).cloned().unwrap_or_default();
    let cost = plan.get("Total Cost").and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    Ok((cost, plan))
}

/// Tries every candidate with hypopg; returns the suggestions worth
/// printing (verified, best first; GIN ones unverified).
pub async fn run(
    conn: &mut PgConnection,
    query: &str,
    candidates: &[Candidate],
    catalog: &Catalog,
    min_cost_cut: f64,
) -> Result<Vec<Suggestion>, sqlx::Error> {
    let (before, baseline) = planned(conn, query).await?;
    let baseline = Node::new(&baseline);
    // (estimated cost, columns, suggestion, partial)
    let mut verified: Vec<(f64, usize, Suggestion, bool)> = Vec::new();
    let mut unverified = Vec::new();
    for candidate in candidates {
        let Some(table) = catalog.table(&candidate.table) else { continue };
        let sql = index::create_statements(table, &candidate.wanted);
        if candidate.wanted.method != "btree" {
            unverified.push(Suggestion {
                index: candidates::describe(candidate),
                verified: false,
                cost_before: None,
                cost_after: None,
                node_before: None,
                node_after: None,
                note: Some(format!("hypopg cannot simulate {} indexes: not verified", candidate.wanted.method)),
                sql,
            });
            continue;
        }
        let statement = format!("CREATE INDEX ON {} {}", table.sql_name(), candidate.wanted.shape());
        // A shape hypopg refuses (a column the statement names but the table
        // lacks) is not suggested; the savepoint keeps the transaction usable.
        sqlx::raw_sql("SAVEPOINT tally_candidate").execute(&mut *conn).await?;
        let created: Result<(i64, String), sqlx::Error> =
            sqlx::query_as("SELECT indexrelid::int8, indexname::text FROM hypopg_create_index($1)")
                .bind(&statement)
                .fetch_one(&mut *conn)
                .await;
        let Ok((oid, name)) = created else {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT tally_candidate").execute(&mut *conn).await?;
            continue;
        };
        sqlx::raw_sql("RELEASE SAVEPOINT tally_candidate").execute(&mut *conn).await?;
        let replanned = planned(conn, query).await;
        sqlx::query("SELECT hypopg_drop_index($1::oid)").bind(oid).execute(&mut *conn).await?;
        let (after, plan) = replanned?;
        let plan = Node::new(&plan);
        let Some(user) =
            std::iter::once(plan).chain(plan.descendants()).find(|n| n.index_name() == Some(name.as_str()))
        else {
            continue;
        };
        // NaN costs (a plan without one) never qualify.
        let qualifies = after <= before * (1.0 - min_cost_cut);
        if !qualifies {
            continue;
        }
        let relation = user.relation();
        let node_before = std::iter::once(baseline)
            .chain(baseline.descendants())
            .find(|n| n.is_scan() && n.relation().is_some() && n.relation() == relation)
            .map(|n| n.label());
        let size = candidate.wanted.keys.len() + candidate.wanted.include.len();
        verified.push((
            after,
            size,
            Suggestion {
                index: candidates::describe(candidate),
                verified: true,
                cost_before: Some(before),
                cost_after: Some(after),
                node_before,
                node_after: Some(user.label().replace(&name, "the new index")),
                note: None,
                sql,
            },
            candidate.wanted.predicate.is_some(),
        ));
    }
    verified.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // A partial index serves only the literal it was made for (`country =
    // 'IS'`, which a dashboard variable changes): it must beat the best
    // general index by half again to be suggested at all.
    let general = verified.iter().filter(|v| !v.3).map(|v| v.0).fold(f64::INFINITY, f64::min);
    verified.retain(|v| !v.3 || v.0 < general * 0.5);
    // A wider index that is not clearly better (within 10%) than a narrower
    // one already suggested adds upkeep for nothing.
    let mut kept: Vec<(f64, usize, Suggestion, bool)> = Vec::new();
    for item in verified {
        if !kept.iter().any(|k| k.1 <= item.1 && item.0 >= k.0 * 0.9) {
            kept.push(item);
        }
    }
    Ok(kept.into_iter().map(|k| k.2).chain(unverified).collect())
}
