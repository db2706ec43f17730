//! The fast path: a batch's rows go straight into `marketing.events` with
//! one `COPY`, written once, instead of a COPY into the staging table and
//! an `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (BENCHMARKS.md,
//! "Ingest"). It is tried under a savepoint and gives way to the staging
//! path ([`super::bisect`]) for the batch when:
//!
//! - a row's key is already there (a file loaded twice, a resumed run, a
//!   concurrent run of the same file): PostgreSQL refuses the COPY with a
//!   unique violation. The rest of the run then uses the staging path,
//!   whose `ON CONFLICT DO NOTHING` counts duplicates, without trying COPY
//!   again;
//! - PostgreSQL refuses a row's data: the staging path finds it and rejects
//!   it alone;
//! - a row may have landed in the default partition: no partition's bounds
//!   hold it (`sql/partitions/events_bounds.sql`, read after the COPY, in
//!   its transaction). The staging path counts those rows, which the
//!   summary reports. A partition cannot be attached or created between the
//!   COPY and that read: both lock the default partition, which the COPY
//!   holds once a row went there.
//!
//! The guarantees are the staging path's: whole batches, exact counts, ids
//! in line order, and the invalidation triggers see every row (a COPY into
//! the parent fires its statement triggers with the rows routed to
//! partitions).

use sqlx::{Connection, PgConnection};

use super::super::document::Row;
use super::COLUMNS;

/// How a try went; the savepoint is released or rolled back either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direct {
    /// Every row is in, none in the default partition.
    Loaded(i64),
    /// A row's key was already there: this batch and the rest of the run
    /// go through the staging path.
    Duplicate,
    /// A row was refused or may be in the default partition: this batch
    /// goes through the staging path.
    Staged,
}

/// COPYs `rows` (their COPY text, `copy`) into `marketing.events` under a
/// savepoint of the caller's transaction.
pub(super) async fn attempt(conn: &mut PgConnection, rows: &[Row], copy: &[u8]) -> Result<Direct, sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    let copied = copy_in(&mut savepoint, copy).await;
    let outcome = match copied {
        Ok(loaded) => match all_in_partitions(&mut savepoint, rows).await? {
            true => Direct::Loaded(loaded),
            false => Direct::Staged,
        },
        Err(error) => match error.as_database_error().and_then(|e| e.code()).as_deref() {
            Some("23505") => Direct::Duplicate,
            _ if super::bisect::refused_by_the_data(&error) => Direct::Staged,
            _ => return Err(error),
        },
    };
    match outcome {
        Direct::Loaded(_) => savepoint.commit().await?,
        _ => savepoint.rollback().await?,
    }
    Ok(outcome)
}

async fn copy_in(conn: &mut PgConnection, copy: &[u8]) -> Result<i64, sqlx::Error> {
    let mut stream = conn.copy_in_raw(&format!("COPY marketing.events ({COLUMNS}) FROM STDIN")).await?;
    stream.send(copy).await?;
    Ok(stream.finish().await? as i64)
}

/// Whether every row's occurred_at is inside the bounds of a partition that
/// has both (not the default partition, not MINVALUE or MAXVALUE).
async fn all_in_partitions(conn: &mut PgConnection, rows: &[Row]) -> Result<bool, sqlx::Error> {
    let query = format!(
        "SELECT lower::timestamptz, upper::timestamptz FROM ({}) AS p WHERE lower IS NOT NULL AND upper IS NOT NULL",
        crate::partitions::events_bounds()
    );
    let bounds: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as(sqlx::AssertSqlSafe(query)).fetch_all(&mut *conn).await?;
    Ok(rows.iter().all(|row| bounds.iter().any(|(lower, upper)| *lower <= row.occurred_at && row.occurred_at < *upper)))
}
