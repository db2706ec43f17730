//! Loading batches, one transaction per batch with the run's counts: a
//! `COPY` straight into `marketing.events` while the run meets no row
//! already there (`direct`), otherwise `COPY` (text format) into a temporary
//! staging table, then `INSERT INTO marketing.events ... SELECT ... ON
//! CONFLICT DO NOTHING` (the unique `(event_id, occurred_at)` index turns a
//! line seen before into a duplicate). Rows PostgreSQL refuses are found and
//! rejected alone (`bisect`).

mod bisect;
mod direct;

use std::fmt::Write as _;

use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgPool, Postgres};
use tokio_util::sync::CancellationToken;

use super::document::Row;
use super::reader::Batch;

const COLUMNS: &str =
    "event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at";

/// One ingest run's connection (its staging table is session-local) and row
/// in `tally.ingest_runs`.
pub struct Loader {
    conn: PoolConnection<Postgres>,
    pub run_id: i64,
    /// Batches are COPYed straight in until a row's key is found already
    /// there; then the run goes on through the staging table.
    direct: bool,
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub loaded: i64,
    pub duplicate: i64,
    /// Loaded rows that landed in the default partition.
    pub in_default: i64,
}

/// Why a batch was not loaded; its transaction is rolled back either way.
#[derive(Debug)]
pub enum LoadError {
    /// Not about any line (a lost connection, a timeout, a permission): the run stops.
    Database(sqlx::Error),
    /// Shutdown was asked for while rows PostgreSQL refused were being looked for.
    Interrupted,
}

impl From<sqlx::Error> for LoadError {
    fn from(error: sqlx::Error) -> Self {
        LoadError::Database(error)
    }
}

impl Loader {
    pub async fn start(pool: &PgPool, source: &str) -> Result<Loader, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        sqlx::raw_sql(
            "CREATE TEMP TABLE IF NOT EXISTS tally_ingest_staging (
                 line bigint GENERATED ALWAYS AS IDENTITY, event_id text, user_id text, event text, properties jsonb, session_id text,
                 utm_source text, utm_medium text, utm_campaign text, occurred_at timestamptz
             ) ON COMMIT DELETE ROWS",
        )
        .execute(&mut *conn)
        .await?;
        let run_id = sqlx::query_scalar("INSERT INTO tally.ingest_runs (source) VALUES ($1) RETURNING id")
            .bind(source)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Loader { conn, run_id, direct: true })
    }

    /// Loads one batch and counts it (rejected lines included) in one
    /// transaction. Rows PostgreSQL refuses join the batch's rejects, in
    /// line order, with its reason; the rest of the batch loads.
    pub async fn load(&mut self, batch: &mut Batch, shutdown: &CancellationToken) -> Result<Loaded, LoadError> {
        let mut tx = self.conn.begin().await?;
        let direct = match self.direct {
            true => direct::attempt(&mut tx, &batch.rows, &batch.copy).await?,
            false => direct::Direct::Staged,
        };
        if direct == direct::Direct::Duplicate {
            tracing::debug!(line = batch.last_line, "rows already loaded: the rest of the run goes through staging");
            self.direct = false;
        }
        let inserted = match direct {
            direct::Direct::Loaded(loaded) => bisect::Inserted { loaded, ..bisect::Inserted::default() },
            _ => bisect::insert(&mut tx, &batch.rows, &batch.copy, shutdown).await?,
        };
        let duplicate = batch.rows.len() as i64 - inserted.loaded - inserted.refused.len() as i64;
        if !inserted.refused.is_empty() {
            batch.rejects.extend(inserted.refused);
            batch.rejects.sort_by_key(|rejection| rejection.line);
        }
        sqlx::query(
            "UPDATE tally.ingest_runs SET lines = lines + $2, loaded = loaded + $3, duplicate = duplicate + $4,
                    rejected = rejected + $5, in_default = in_default + $6, last_line = $7
             WHERE id = $1",
        )
        .bind(self.run_id)
        .bind(batch.lines as i64)
        .bind(inserted.loaded)
        .bind(duplicate)
        .bind(batch.rejects.len() as i64)
        .bind(inserted.in_default)
        .bind(batch.last_line as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Loaded { loaded: inserted.loaded, duplicate, in_default: inserted.in_default })
    }

    /// Records how the run ended.
    pub async fn finish(&mut self, status: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE tally.ingest_runs SET status = $2, finished_at = now() WHERE id = $1")
            .bind(self.run_id)
            .bind(status)
            .execute(&mut *self.conn)
            .await?;
        Ok(())
    }
}

/// The rows in COPY text format, in [`COLUMNS`] order: tab-separated, `\N`
/// for NULL, with backslash, tab, newline and carriage return escaped.
pub fn copy_text(rows: &[Row]) -> Vec<u8> {
    let mut out = String::with_capacity(rows.iter().map(|r| r.properties.len() + 160).sum());
    for row in rows {
        let fields = [
            Some(row.event_id.as_str()),
            row.user_id.as_deref(),
            Some(row.event.as_str()),
            Some(row.properties.as_str()),
            row.session_id.as_deref(),
            row.utm_source.as_deref(),
            row.utm_medium.as_deref(),
            row.utm_campaign.as_deref(),
        ];
        for field in fields {
            match field {
                None => out.push_str("\\N"),
                Some(text) => escape(&mut out, text),
            }
            out.push('\t');
        }
        // Into the buffer, without a String per row.
        let _ = write!(out, "{}", row.occurred_at.format("%Y-%m-%d %H:%M:%S%.6f+00\n"));
    }
    out.into_bytes()
}

/// Appends `text`, the runs without a special character as whole slices.
fn escape(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['\\', '\t', '\n', '\r']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'\\' => "\\\\",
            b'\t' => "\\t",
            b'\n' => "\\n",
            _ => "\\r",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_would_misread() {
        let row = super::super::document::parse(
            3,
            br#"{"_id":"a\tb","event":"x\\y\nz","properties":{"q":"1\\n"},"timestamp":"2026-03-03T10:00:00.5Z"}"#,
        )
        .unwrap();
        let text = String::from_utf8(copy_text(&[row])).unwrap();
        assert_eq!(
            text,
            "a\\tb\t\\N\tx\\\\y\\nz\t{\"q\":\"1\\\\\\\\n\"}\t\\N\t\\N\t\\N\t\\N\t2026-03-03 10:00:00.500000+00\n"
        );
    }

    #[test]
    fn escape_keeps_text_around_special_characters() {
        let mut out = String::new();
        escape(&mut out, "\r\u{e9}t\u{e9}\\\\\u{1F600}\n\tend\r");
        assert_eq!(out, "\\r\u{e9}t\u{e9}\\\\\\\\\u{1F600}\\n\\tend\\r");
        let mut plain = String::from("x");
        escape(&mut plain, "");
        escape(&mut plain, "no specials");
        assert_eq!(plain, "xno specials");
    }
}
