//! `tally.refresh_runs`: one row per refresh attempt. Freshness after a
//! restart, `tally status` and pruning all read or write it here.

use chrono::{DateTime, Utc};
use sqlx::{AssertSqlSafe, PgPool};

use super::RefreshReport;

/// Appends one attempt.
pub async fn record(pool: &PgPool, report: &RefreshReport, worker: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO tally.refresh_runs
             (aggregate, mode, started_at, finished_at, outcome, rows, days_refreshed, error, worker)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(report.aggregate)
    .bind(report.mode)
    .bind(report.started_at)
    .bind(report.finished_at)
    .bind(report.outcome.as_str())
    .bind(report.rows)
    .bind(report.days.map(|d| d as i32))
    .bind(report.error.as_deref())
    .bind(worker)
    .execute(pool)
    .await?;
    Ok(())
}

/// Rows of `tally.refresh_runs r` that tally can have written: times since
/// 2000 and not later than a day from now. Anything else (an `infinity`, a
/// year 270000, a clock far off) is not history to read back, and some of
/// it cannot even be held as a date in tally.
const PLAUSIBLE: &str = "r.started_at BETWEEN timestamptz '2000-01-01 00:00:00+00' AND now() + interval '1 day'
     AND r.finished_at BETWEEN timestamptz '2000-01-01 00:00:00+00' AND now() + interval '1 day'";

/// The last successful refresh of one aggregate.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastSuccess {
    pub aggregate: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub rows: Option<i64>,
}

/// The last success of every aggregate that has one.
pub async fn last_successes(pool: &PgPool) -> Result<Vec<LastSuccess>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT DISTINCT ON (aggregate) aggregate, started_at, finished_at, rows
             FROM tally.refresh_runs r WHERE outcome = 'success' AND {PLAUSIBLE}
             ORDER BY aggregate, started_at DESC"
    )))
    .fetch_all(pool)
    .await
}

/// What `tally status` shows of one aggregate's history.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistorySummary {
    pub aggregate: String,
    pub last_success_started: Option<DateTime<Utc>>,
    pub last_success_finished: Option<DateTime<Utc>>,
    pub last_duration_seconds: Option<f64>,
    pub rows: Option<i64>,
    pub last_attempt_started: Option<DateTime<Utc>>,
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// The history summary of each named aggregate (a row even when it never ran).
pub async fn summaries(pool: &PgPool, aggregates: &[&str]) -> Result<Vec<HistorySummary>, sqlx::Error> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT a.aggregate,
                s.started_at AS last_success_started,
                s.finished_at AS last_success_finished,
                extract(epoch FROM s.finished_at - s.started_at)::float8 AS last_duration_seconds,
                s.rows,
                l.started_at AS last_attempt_started,
                l.outcome AS last_outcome,
                f.error AS last_error,
                f.finished_at AS last_error_at
         FROM unnest($1::text[]) WITH ORDINALITY AS a(aggregate, position)
         LEFT JOIN LATERAL (
             SELECT started_at, finished_at, rows FROM tally.refresh_runs r
             WHERE r.aggregate = a.aggregate AND r.outcome = 'success' AND {PLAUSIBLE}
             ORDER BY started_at DESC LIMIT 1) s ON true
         LEFT JOIN LATERAL (
             SELECT started_at, outcome FROM tally.refresh_runs r
             WHERE r.aggregate = a.aggregate AND {PLAUSIBLE}
             ORDER BY started_at DESC LIMIT 1) l ON true
         LEFT JOIN LATERAL (
             SELECT error, finished_at FROM tally.refresh_runs r
             WHERE r.aggregate = a.aggregate AND r.outcome = 'failure' AND {PLAUSIBLE}
             ORDER BY started_at DESC LIMIT 1) f ON true
         ORDER BY a.position"
    )))
    .bind(aggregates)
    .fetch_all(pool)
    .await
}

/// Deletes history older than `days`, except each aggregate's last success
/// (freshness must survive however long an aggregate stays disabled);
/// returns how many rows went.
pub async fn prune(pool: &PgPool, days: u32) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "DELETE FROM tally.refresh_runs
         WHERE started_at < now() - make_interval(days => $1)
           AND id NOT IN (SELECT DISTINCT ON (aggregate) id FROM tally.refresh_runs
                          WHERE outcome = 'success' ORDER BY aggregate, started_at DESC)",
    )
    .bind(days as i32)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}
