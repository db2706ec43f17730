//! Ingest speed next to a raw COPY: the same rows, once as NDJSON through
//! `tally ingest` into an empty month of `marketing.events`, once as CSV
//! through `COPY ... FROM STDIN` into a plain table with the same indexes
//! (and into one with none, for reference).

use std::io::Write;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use super::{median, show};
use crate::config::Config;
use crate::error::Error;
use crate::ingest::{IngestOptions, Source, ingest};
use crate::partitions::{ManagedTable, Month, create_months};

/// Ingest and COPY timings for the same rows.
#[derive(Debug, Clone)]
pub struct IngestResult {
    pub rows: u64,
    /// Runs of each (raw COPY with indexes, ingest); medians.
    pub repeat: u32,
    pub ingest: Duration,
    pub copy_indexed: Duration,
    pub copy_bare: Duration,
}

pub(super) async fn measure(pool: &PgPool, config: &Config, rows: u64, repeat: u32) -> Result<IngestResult, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    let dir = tempfile::tempdir().map_err(|e| Error::runtime("bench", e.to_string()))?;
    let month = Month::of(chrono::Utc::now().date_naive()).plus(24);
    let (ndjson, csv) =
        write_files(dir.path(), rows, month).map_err(|e| Error::runtime("writing bench files", e.to_string()))?;
    create_months(pool, config, &ManagedTable::events(), &[month])
        .await
        .map_err(|e| Error::runtime("bench", e.to_string()))?;
    crate::aggregates::triggers::ensure(pool, &Config::from_toml("", std::path::Path::new("(bench)"))?)
        .await
        .map_err(|e| Error::runtime("bench: removing triggers", e.to_string()))?;

    // Raw COPY and `tally ingest` alternate, `repeat` times each, so that
    // a slow moment of the machine falls on both; the medians are compared.
    let (mut indexed, mut ingested) = (Vec::new(), Vec::new());
    for _ in 0..repeat.max(1) {
        indexed.push(copy_into_new_table(pool, "INCLUDING INDEXES", &csv).await?);
        let summary = ingest(pool, &Source::File(ndjson.clone()), &IngestOptions::default(), &CancellationToken::new())
            .await
            .map_err(|e| Error::runtime("bench ingest", e))?;
        if summary.loaded != rows {
            return Err(Error::runtime("bench ingest", format!("loaded {} of {rows} rows: {summary}", summary.loaded)));
        }
        ingested.push(summary.elapsed);
        // The month is emptied for the next run and for what the bench measures next.
        let partition = format!("TRUNCATE marketing.{}", month.partition_name("events"));
        sqlx::raw_sql(AssertSqlSafe(partition)).execute(pool).await.map_err(failed("emptying the month"))?;
    }
    let copy_bare = copy_into_new_table(pool, "", &csv).await?;
    tracing::info!(rows, "benchmarked ingest against COPY");
    Ok(IngestResult { rows, repeat, ingest: median(ingested), copy_indexed: median(indexed), copy_bare })
}

/// The same rows as NDJSON (the brief's document, Extended JSON dates and
/// decimals) and as CSV in tally's columns.
fn write_files(
    dir: &std::path::Path,
    rows: u64,
    month: Month,
) -> std::io::Result<(std::path::PathBuf, std::path::PathBuf)> {
    let (ndjson_path, csv_path) = (dir.join("events.ndjson"), dir.join("events.csv"));
    let mut ndjson = std::io::BufWriter::new(std::fs::File::create(&ndjson_path)?);
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    let start = month.start();
    for i in 0..rows {
        let at = start + chrono::Duration::seconds((i * 2) as i64 % (28 * 86_400));
        let (event, revenue) = if i % 25 == 0 {
            ("purchase", format!("{}.{:02}", i % 400, i % 100))
        } else {
            ("page_view", String::new())
        };
        let (source, medium, campaign) =
            [("google", "cpc", "brand"), ("facebook", "paid_social", "spring"), ("", "", "")][(i % 3) as usize];
        let url = ["/", "/pricing", "/blog/how-to", "/signup"][(i % 4) as usize];
        let mut properties = format!(r#"{{"url":"{url}","referrer":"https://www.example.com/search?q={i}""#);
        if !revenue.is_empty() {
            properties.push_str(&format!(r#","revenue":{{"$numberDecimal":"{revenue}"}}"#));
        }
        if !source.is_empty() {
            properties
                .push_str(&format!(r#","utm_source":"{source}","utm_medium":"{medium}","utm_campaign":"{campaign}""#));
        }
        properties.push('}');
        let millis = at.timestamp_millis();
        writeln!(
            ndjson,
            r#"{{"_id":{{"$oid":"{i:024x}"}},"userId":"visitor-{}","event":"{event}","properties":{properties},"session":"session-{}","timestamp":{{"$date":{{"$numberLong":"{millis}"}}}}}}"#,
            i % 50_000,
            i / 5
        )?;
        let plain = properties.replace(&format!(r#"{{"$numberDecimal":"{revenue}"}}"#), &revenue).replace('"', "\"\"");
        writeln!(
            csv,
            "{i:024x},visitor-{},{event},\"{plain}\",session-{},{source},{medium},{campaign},{}",
            i % 50_000,
            i / 5,
            at.format("%Y-%m-%d %H:%M:%S%.3f+00")
        )?;
    }
    ndjson.flush()?;
    csv.flush()?;
    Ok((ndjson_path, csv_path))
}

/// A raw COPY of `csv` into a new table like `marketing.events` (with its
/// defaults, and `indexes`: "INCLUDING INDEXES" or nothing), dropped after.
async fn copy_into_new_table(pool: &PgPool, indexes: &str, csv: &std::path::Path) -> Result<Duration, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS bench_copy; \
         CREATE TABLE bench_copy (LIKE marketing.events INCLUDING DEFAULTS INCLUDING IDENTITY {indexes})"
    )))
    .execute(pool)
    .await
    .map_err(failed("creating the COPY target"))?;
    let took = copy_file(pool, "bench_copy", csv).await.map_err(failed("COPY"))?;
    sqlx::raw_sql("DROP TABLE bench_copy").execute(pool).await.map_err(failed("dropping the COPY target"))?;
    Ok(took)
}

/// `COPY table FROM STDIN (FORMAT csv)` fed from `file`, like `psql \copy`.
async fn copy_file(pool: &PgPool, table: &str, file: &std::path::Path) -> Result<Duration, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let data = tokio::fs::read(file).await.map_err(sqlx::Error::Io)?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY {table} (event_id, user_id, event, properties, session_id, utm_source, utm_medium, utm_campaign, occurred_at) \
             FROM STDIN (FORMAT csv)"
        ))
        .await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    Ok(started.elapsed())
}

/// The Markdown table of the ingest figures.
pub(super) fn table(result: &IngestResult) -> String {
    let rate = |d: Duration| result.rows as f64 / d.as_secs_f64().max(1e-9);
    format!(
        "Ingest of {} events: `tally ingest` (NDJSON, Extended JSON) against a raw COPY of the same rows (CSV), \
         alternating, median of {} runs each\n\n\
         | path | time | rows/s | vs raw COPY with indexes |\n|---|---:|---:|---:|\n\
         | raw COPY, table with the 4 indexes of `marketing.events` | {} | {:.0} | 1.00× |\n\
         | raw COPY, table without indexes (reference) | {} | {:.0} | {:.2}× |\n\
         | `tally ingest` into an empty month of `marketing.events` | {} | {:.0} | {:.2}× |\n\n",
        result.rows,
        result.repeat,
        show(result.copy_indexed),
        rate(result.copy_indexed),
        show(result.copy_bare),
        rate(result.copy_bare),
        rate(result.copy_bare) / rate(result.copy_indexed),
        show(result.ingest),
        rate(result.ingest),
        rate(result.ingest) / rate(result.copy_indexed),
    )
}
