//! When tally first saw each index (`tally.index_sightings`, migration
//! 0009). PostgreSQL does not record when an index was created, so "no scan
//! since the statistics began" says nothing about an index created an hour
//! ago: the audit judges each index only over the time tally has watched it
//! ([`super::watch`]).
//!
//! [`record`] adds the indexes tally has not seen and forgets dropped ones.
//! It runs where partition maintenance does (worker start-up, the
//! maintenance schedule, `tally partitions`) and at the start of every audit,
//! so an index is first seen at most a maintenance interval after it was
//! created: a first sighting is never earlier than the creation, which
//! errs on the side of holding advice back.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::types::Oid;

/// tally's record of one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Sighting {
    pub index_oid: Oid,
    /// When tally first saw it (for `at_install`, when migration 0009 ran).
    pub first_seen: DateTime<Utc>,
    /// It existed when tally started keeping sightings: its age is unknown.
    pub at_install: bool,
}

/// What one audit could do with the sightings (`index_sightings` in `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SightingsStatus {
    /// New indexes were recorded, and every sighting read.
    Recorded,
    /// Recording failed (e.g. a role that may only read the tally schema):
    /// the sightings there were read; indexes without one are held back.
    NotRecorded,
    /// Not even readable (no table, no privilege): every index is held back.
    Unreadable,
}

/// What [`record`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Indexes seen for the first time, or seen under a new name.
    pub seen: u64,
    /// Sightings of indexes that no longer exist, removed.
    pub forgotten: u64,
}

/// Records every index the audit judges that tally has not seen yet
/// (`first_seen` now), updates the name of renamed ones, and forgets those
/// that no longer exist, in one statement. Cheap: one pass over `pg_index`,
/// and no row is written for an index already recorded under its name.
pub async fn record(pool: &PgPool) -> Result<Recorded, sqlx::Error> {
    let (seen, forgotten): (i64, i64) = sqlx::query_as(
        r#"WITH present AS (
             SELECT c.oid AS index_oid, format('%I.%I', n.nspname, c.relname) AS index_name
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
               AND NOT c.relispartition),
           gone AS (
             DELETE FROM tally.index_sightings s
             WHERE NOT EXISTS (SELECT 1 FROM present p WHERE p.index_oid = s.index_oid)
             RETURNING 1),
           seen AS (
             INSERT INTO tally.index_sightings AS s (index_oid, index_name, at_install)
             SELECT index_oid, index_name, false FROM present
             ON CONFLICT (index_oid) DO UPDATE SET index_name = excluded.index_name
             WHERE s.index_name <> excluded.index_name
             RETURNING 1)
         SELECT (SELECT count(*) FROM seen), (SELECT count(*) FROM gone)"#,
    )
    .fetch_one(pool)
    .await?;
    Ok(Recorded { seen: seen.unsigned_abs(), forgotten: forgotten.unsigned_abs() })
}

/// Every sighting tally has.
pub async fn load(pool: &PgPool) -> Result<Vec<Sighting>, sqlx::Error> {
    sqlx::query_as("SELECT index_oid, first_seen, at_install FROM tally.index_sightings").fetch_all(pool).await
}

/// Records what is new, then reads every sighting, for an audit: a failure
/// to record or to read is not the audit's failure, only less to judge by.
/// Returns the sightings, what could be done, and why not (PostgreSQL's words).
pub async fn record_and_load(pool: &PgPool) -> (Vec<Sighting>, SightingsStatus, Option<String>) {
    let recorded = record(pool).await.err().map(|e| crate::db::describe(&e));
    match (load(pool).await, recorded) {
        (Ok(sightings), None) => (sightings, SightingsStatus::Recorded, None),
        (Ok(sightings), Some(problem)) => (sightings, SightingsStatus::NotRecorded, Some(problem)),
        (Err(e), _) => (Vec::new(), SightingsStatus::Unreadable, Some(crate::db::describe(&e))),
    }
}

/// Records sightings for the worker's maintenance; failures are logged and
/// retried at the next run (the audit, meanwhile, holds unseen indexes back).
pub async fn record_for_maintenance(pool: &PgPool) {
    match record(pool).await {
        Ok(Recorded { seen: 0, forgotten: 0 }) => {}
        Ok(Recorded { seen, forgotten }) => {
            tracing::info!(seen, forgotten, "recorded new and dropped indexes for tally doctor's index ages")
        }
        Err(e) => tracing::warn!(
            error = %crate::db::describe(&e),
            "could not record which indexes exist (tally.index_sightings, for tally doctor's index ages); \
             retried at the next maintenance run: run `tally migrate` if the table is missing"
        ),
    }
}
