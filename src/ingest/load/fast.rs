//! The fast path of a batch: its new rows are copied straight into
//! `marketing.events` with `COPY`, each row written once, where the staging
//! path writes it twice (`COPY` into a temporary table, then `INSERT ...
//! SELECT ... ON CONFLICT DO NOTHING`).
//!
//! Which rows are new: lines repeating a key earlier in the batch are
//! duplicates (the first line of a key wins, as in the staging path). While
//! the run finds no key it has seen before, a batch is copied whole without
//! asking (`optimistic`): a fresh load pays nothing for duplicate detection.
//! Once a `COPY` meets an existing key (a unique violation: a rerun, an
//! overlapping file), it is rolled back and the run probes instead: one
//! indexed lookup per batch finds which of its `(event_id, occurred_at)`
//! keys exist, and only the others are copied; a batch whose probe finds
//! none makes the run optimistic again.
//!
//! Under a savepoint of the batch's transaction. When PostgreSQL refuses the
//! probed `COPY` (some row's data, or a concurrent writer committed one of
//! the keys after the probe), it is rolled back and the batch takes the
//! staging path ([`super::bisect`]), which handles both. The guarantees stay
//! those of the staging path: the batch commits whole with its counts, a
//! line seen before is a duplicate, and the statement triggers of
//! incremental mode see the `COPY` (transition tables include copied rows).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::super::document::Row;
use super::bisect::{Inserted, refused_by_the_data};
use super::{COLUMNS, copy_text};

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Copies the batch's new rows into `marketing.events`; `None` when the
/// batch must take the staging path instead (nothing of it is kept then).
/// `optimistic` is the run's state, updated here.
pub(super) async fn insert(
    conn: &mut PgConnection,
    rows: &[Row],
    optimistic: &mut bool,
) -> Result<Option<Inserted>, sqlx::Error> {
    let mut seen: HashSet<(&str, DateTime<Utc>)> = HashSet::with_capacity(rows.len());
    let distinct: Vec<&Row> = rows.iter().filter(|r| seen.insert((r.event_id.as_str(), r.occurred_at))).collect();
    if *optimistic {
        match attempt(conn, &distinct).await {
            Ok(inserted) => return Ok(Some(inserted)),
            Err(error) if is_unique_violation(&error) => *optimistic = false,
            Err(error) if refused_by_the_data(&error) => return Ok(None),
            Err(error) => return Err(error),
        }
    }
    let existing = probe(conn, &distinct).await?;
    *optimistic = existing.is_empty();
    let new: Vec<&Row> =
        distinct.into_iter().filter(|r| !existing.contains(&(r.event_id.clone(), r.occurred_at))).collect();
    match attempt(conn, &new).await {
        Ok(inserted) => Ok(Some(inserted)),
        Err(error) if refused_by_the_data(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| code == UNIQUE_VIOLATION)
}

/// The keys of `rows` that `marketing.events` holds.
async fn probe(conn: &mut PgConnection, rows: &[&Row]) -> Result<HashSet<(String, DateTime<Utc>)>, sqlx::Error> {
    let (ids, times) = keys(rows);
    let existing: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT e.event_id, e.occurred_at
         FROM unnest($1::text[], $2::timestamptz[]) AS b(event_id, occurred_at)
         JOIN marketing.events AS e USING (event_id, occurred_at)",
    )
    .bind(&ids)
    .bind(&times)
    .fetch_all(&mut *conn)
    .await?;
    Ok(existing.into_iter().collect())
}

fn keys<'a>(rows: &[&'a Row]) -> (Vec<&'a str>, Vec<DateTime<Utc>>) {
    rows.iter().map(|r| (r.event_id.as_str(), r.occurred_at)).unzip()
}

/// `COPY` of `rows` under a savepoint, rolled back if it fails.
async fn attempt(conn: &mut PgConnection, rows: &[&Row]) -> Result<Inserted, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Inserted::default());
    }
    let mut savepoint = conn.begin().await?;
    match copy(&mut savepoint, rows).await {
        Ok(inserted) => {
            savepoint.commit().await?;
            Ok(inserted)
        }
        Err(error) => {
            savepoint.rollback().await?;
            Err(error)
        }
    }
}

async fn copy(conn: &mut PgConnection, rows: &[&Row]) -> Result<Inserted, sqlx::Error> {
    let mut copy = conn.copy_in_raw(&format!("COPY marketing.events ({COLUMNS}) FROM STDIN")).await?;
    copy.send(copy_text(rows.iter().copied(), false)).await?;
    copy.finish().await?;
    // Rows no monthly partition takes land in the default partition: look
    // there only when it has rows in the batch's time range (one index probe).
    let (ids, times) = keys(rows);
    let (first, last) = (times.iter().min().copied(), times.iter().max().copied());
    let in_default: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN to_regclass('marketing.events_default') IS NULL
                      OR NOT EXISTS (SELECT 1 FROM marketing.events_default WHERE occurred_at BETWEEN $3 AND $4)
                 THEN 0
                 ELSE (SELECT count(*) FROM unnest($1::text[], $2::timestamptz[]) AS b(event_id, occurred_at)
                       JOIN marketing.events_default AS d USING (event_id, occurred_at)) END",
    )
    .bind(&ids)
    .bind(&times)
    .bind(first)
    .bind(last)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Inserted { loaded: rows.len() as i64, in_default, refused: Vec::new() })
}
