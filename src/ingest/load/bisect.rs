//! Inserting a batch's rows so that a row PostgreSQL refuses costs only its
//! own line, never the batch (or the run). The parser rejects what it knows
//! PostgreSQL cannot store (`document/limits.rs`); this is the safety net
//! for anything it does not foresee: a character the database's encoding
//! lacks, a check constraint or NOT NULL added to `marketing.events`, a row
//! no partition takes, an index entry too large.
//!
//! The rows are tried whole: one `COPY`, one `INSERT`, under a savepoint.
//! When PostgreSQL refuses the data, the attempt is rolled back to the
//! savepoint and each half is tried, in line order, down to single rows,
//! which are rejected with PostgreSQL's message. k refused rows among n cost
//! about 2k·log2(n/k) attempts; none cost one. The batch stays one
//! transaction, so it still commits whole, counts included, and resuming
//! with `--skip-lines` still starts at a batch's end. Every row goes in by
//! an `INSERT` like the batch's, so the invalidation triggers see it.

use std::ops::Range;

use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use super::super::document::{Row, cut};
use super::super::reader::Rejection;
use super::{COLUMNS, LoadError, copy_text};

/// What inserting a batch's rows did.
#[derive(Debug, Default)]
pub(super) struct Inserted {
    pub loaded: i64,
    /// Loaded rows that landed in the default partition.
    pub in_default: i64,
    /// Rows PostgreSQL refused, in line order, with its reason.
    pub refused: Vec<Rejection>,
}

/// Inserts `rows` within the caller's transaction. `shutdown` is heeded
/// between attempts once rows are being looked for (a batch with many
/// refused rows takes a while), never before the first.
pub(super) async fn insert(
    conn: &mut PgConnection,
    rows: &[Row],
    copy: &[u8],
    shutdown: &CancellationToken,
) -> Result<Inserted, LoadError> {
    let mut inserted = Inserted::default();
    // Ranges still to try, the next one last, so they go in line order.
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..rows.len());
    while let Some(range) = pending.pop() {
        if range.is_empty() {
            continue;
        }
        if range.len() < rows.len() && shutdown.is_cancelled() {
            return Err(LoadError::Interrupted);
        }
        // The staging table is emptied at commit; before another attempt, by hand.
        let another_follows = !pending.is_empty();
        // The batch's own COPY text for the whole batch; a part's is built.
        let text = match range.len() == rows.len() {
            true => std::borrow::Cow::Borrowed(copy),
            false => std::borrow::Cow::Owned(copy_text(&rows[range.clone()])),
        };
        match attempt(conn, &text, another_follows).await {
            Ok((loaded, in_default)) => {
                inserted.loaded += loaded;
                inserted.in_default += in_default;
            }
            Err(error) if refused_by_the_data(&error) => match &rows[range.clone()] {
                [row] => inserted.refused.push(Rejection {
                    line: row.line,
                    reason: format!("PostgreSQL refused it: {}", cut(crate::db::describe(&error), 500)),
                    text: row.text.clone(),
                }),
                _ => {
                    let middle = range.start + range.len() / 2;
                    pending.push(middle..range.end);
                    pending.push(range.start..middle);
                }
            },
            Err(error) => return Err(LoadError::Database(error)),
        }
    }
    Ok(inserted)
}

/// `COPY` (of `copy`, rows' COPY text) and `INSERT` under a savepoint, released when they
/// succeed and rolled back to when they fail. Returns (loaded, in_default).
async fn attempt(conn: &mut PgConnection, copy: &[u8], clear_staging: bool) -> Result<(i64, i64), sqlx::Error> {
    let mut savepoint = conn.begin().await?;
    match copy_and_insert(&mut savepoint, copy, clear_staging).await {
        Ok(counts) => {
            savepoint.commit().await?;
            Ok(counts)
        }
        Err(error) => {
            savepoint.rollback().await?;
            Err(error)
        }
    }
}

async fn copy_and_insert(conn: &mut PgConnection, copy: &[u8], clear_staging: bool) -> Result<(i64, i64), sqlx::Error> {
    // `line` is the staging table's identity: rows are numbered in COPY order.
    let mut stream = conn.copy_in_raw(&format!("COPY pg_temp.tally_ingest_staging ({COLUMNS}) FROM STDIN")).await?;
    stream.send(copy).await?;
    stream.finish().await?;
    let counts = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH inserted AS (
             INSERT INTO marketing.events ({COLUMNS})
             SELECT {COLUMNS} FROM pg_temp.tally_ingest_staging ORDER BY line
             ON CONFLICT DO NOTHING
             RETURNING tableoid)
         SELECT count(*), count(*) FILTER (WHERE tableoid = to_regclass('marketing.events_default')) FROM inserted"
    )))
    .fetch_one(&mut *conn)
    .await?;
    if clear_staging {
        sqlx::query("DELETE FROM pg_temp.tally_ingest_staging").execute(&mut *conn).await?;
    }
    Ok(counts)
}

/// Whether PostgreSQL refused some row's data, rather than failing for a
/// reason no line is to blame for (a lost connection, a timeout, a
/// permission, a full disk), which stops the run.
pub(super) fn refused_by_the_data(error: &sqlx::Error) -> bool {
    error.as_database_error().and_then(|e| e.code()).is_some_and(|code| about_a_row(&code))
}

/// SQLSTATEs about a row's values: data exceptions (class 22: a number out
/// of range, a character the encoding lacks, a string too long), integrity
/// violations (class 23: a check, a NOT NULL, no partition for the row),
/// and the program limits a value can hit (54000: an index entry or a jsonb
/// too large; 54001: nesting too deep).
fn about_a_row(sqlstate: &str) -> bool {
    sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate == "54000" || sqlstate == "54001"
}

#[cfg(test)]
mod tests {
    use super::about_a_row;

    #[test]
    fn only_errors_about_values_are_blamed_on_rows() {
        for sqlstate in ["22003", "22P02", "22P05", "22001", "23514", "23502", "54000", "54001"] {
            assert!(about_a_row(sqlstate), "{sqlstate}");
        }
        // Connection lost, admin shutdown, statement timeout, lock timeout,
        // deadlock, serialization, permission, disk full, undefined table.
        for sqlstate in ["08006", "57P01", "57014", "55P03", "40P01", "40001", "42501", "53100", "42P01", "XX000"] {
            assert!(!about_a_row(sqlstate), "{sqlstate}");
        }
    }
}
