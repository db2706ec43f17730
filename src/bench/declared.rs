//! `tally bench --declared`: aggregates declared in the config over a
//! foreign table (`sql/bench/declared/`: a web analytics product's page
//! views, partitioned by month, with a websites dimension), as a user who
//! is not on `marketing.*` runs tally. Per data size:
//!
//! - one changed day (about 1% of its rows): an incremental refresh of
//!   `daily_pages` against the same SELECT as a materialized view refreshed
//!   CONCURRENTLY (what the user does without tally);
//! - the whole cycle: three declared aggregates refreshed after a minute of
//!   traffic, all `concurrently` against all `incremental`;
//!
//! and, on the largest size, what the triggers of three incremental
//! aggregates cost the table's writers: a COPY, and single-row INSERTs one
//! statement each, with and without them, alternating (medians).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, Utc};
use sqlx::{AssertSqlSafe, PgPool};

use super::refresh::timed_refresh;
use super::{BenchOptions, median, ratio, show};
use crate::aggregates::triggers;
use crate::config::Config;
use crate::db::template::render;
use crate::error::Error;

const SCHEMA: &str = include_str!("../../sql/bench/declared/schema.sql");
const GENERATE: &str = include_str!("../../sql/bench/declared/generate.sql");
const CHANGE_DAY: &str = include_str!("../../sql/bench/declared/change_day.sql");
const MINUTE: &str = include_str!("../../sql/bench/declared/minute.sql");
/// The declared aggregates, as files a user would write.
const AGGREGATES: [(&str, &str); 3] = [
    ("daily_pages", include_str!("../../sql/bench/declared/daily_pages.sql")),
    ("daily_owners", include_str!("../../sql/bench/declared/daily_owners.sql")),
    ("daily_referrers", include_str!("../../sql/bench/declared/daily_referrers.sql")),
];
/// Single-row INSERTs per writer-cost figure.
const SINGLE_ROWS: usize = 10_000;
/// Single-row INSERTs per alternating block.
const BLOCK: usize = 1_000;

/// The figures of one data size.
#[derive(Debug, Clone)]
pub struct DeclaredResult {
    pub rows: u64,
    pub rows_changed: i64,
    pub build: Duration,
    pub concurrently: Duration,
    pub incremental: Duration,
    pub days_refreshed: i64,
    /// The whole cycle of the three aggregates: concurrently, incremental.
    pub cycle: [Duration; 2],
}

/// What the triggers cost the writers.
#[derive(Debug, Clone)]
pub struct WriterCost {
    pub copy_rows: u64,
    pub copy: [Duration; 2],
    pub single: [Duration; 2],
    /// Marks left by SINGLE_ROWS single-row INSERTs with triggers.
    pub single_marks: i64,
}

/// The declared aggregates' files and a config naming them in a mode.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn write() -> Result<Files, Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::runtime("bench", e.to_string()))?;
        for (name, sql) in AGGREGATES {
            std::fs::write(dir.path().join(format!("{name}.sql")), sql)
                .map_err(|e| Error::runtime("bench: writing the aggregates' files", e.to_string()))?;
        }
        Ok(Files { dir })
    }

    fn config(&self, mode: &str) -> Result<Arc<Config>, Error> {
        let text: String = AGGREGATES
            .iter()
            .map(|(name, _)| format!("[aggregates.{name}]\nsql = \"{name}.sql\"\nmode = \"{mode}\"\n"))
            .collect();
        let path = self.dir.path().join(format!("{mode}.toml"));
        std::fs::write(&path, text).map_err(|e| Error::runtime("bench: writing the config", e.to_string()))?;
        Ok(Arc::new(Config::load(Some(&path))?))
    }
}

fn failed(what: &'static str) -> impl Fn(sqlx::Error) -> Error {
    move |e| Error::database(format!("bench: {what}"), &e)
}

/// Creates the foreign schema and fills it with `rows` page views.
pub(super) async fn generate(pool: &PgPool, rows: u64, days: u32) -> Result<(), Error> {
    let today = Utc::now().date_naive();
    let first = (today - Days::new(u64::from(days) + 31)).with_day(1).unwrap_or(today);
    let last = (today + Days::new(62)).with_day(1).unwrap_or(today);
    let schema =
        render(SCHEMA, &[("first_month", &format!("'{first}'::date")), ("last_month", &format!("'{last}'::date"))]);
    sqlx::raw_sql(AssertSqlSafe(schema)).execute(pool).await.map_err(failed("creating the foreign schema"))?;
    let generate = render(GENERATE, &[("rows", &rows.to_string()), ("days", &days.to_string())]);
    sqlx::raw_sql(AssertSqlSafe(generate)).execute(pool).await.map_err(failed("generating page views"))?;
    super::settle(pool).await
}

pub(super) async fn measure(pool: &PgPool, rows: u64, options: &BenchOptions) -> Result<DeclaredResult, Error> {
    generate(pool, rows, options.days).await?;
    let files = Files::write()?;
    let concurrently = files.config("concurrently")?;
    let incremental = files.config("incremental")?;
    let pages = |config: &Config| config.find("daily_pages").ok_or_else(|| Error::runtime("bench", "no daily_pages"));
    let (build, _) = timed_refresh(pool, &concurrently, pages(&concurrently)?).await?;
    let days: Vec<chrono::NaiveDate> =
        (0..options.repeat).map(|i| Utc::now().date_naive() - Days::new(5 + u64::from(i))).collect();
    let mut rows_changed = 0;
    let mut by_view = Vec::new();
    for day in &days {
        rows_changed = change_day(pool, *day).await?;
        by_view.push(timed_refresh(pool, &concurrently, pages(&concurrently)?).await?.0);
    }
    // The switch to incremental is a rebuild, not measured.
    timed_refresh(pool, &incremental, pages(&incremental)?).await?;
    let (mut by_days, mut days_refreshed) = (Vec::new(), 0);
    for day in &days {
        change_day(pool, *day).await?;
        let (took, refreshed) = timed_refresh(pool, &incremental, pages(&incremental)?).await?;
        by_days.push(took);
        days_refreshed = refreshed.unwrap_or(0);
    }
    super::refresh::verify(pool, &incremental, pages(&incremental)?).await?;
    let cycle = [whole_cycle(pool, &concurrently, options).await?, whole_cycle(pool, &incremental, options).await?];
    tracing::info!(rows, "benchmarked declared aggregates");
    Ok(DeclaredResult {
        rows,
        rows_changed,
        build,
        concurrently: median(by_view),
        incremental: median(by_days),
        days_refreshed,
        cycle,
    })
}

async fn change_day(pool: &PgPool, day: chrono::NaiveDate) -> Result<i64, Error> {
    let done = sqlx::query(CHANGE_DAY).bind(day).execute(pool).await.map_err(failed("changing a day"))?;
    Ok(done.rows_affected() as i64)
}

/// The three aggregates refreshed in `config`'s mode after a minute of
/// traffic (median of `repeat`), each checked against its SELECT after.
async fn whole_cycle(pool: &PgPool, config: &Arc<Config>, options: &BenchOptions) -> Result<Duration, Error> {
    let aggregates: Vec<_> = AGGREGATES.iter().filter_map(|(name, _)| config.find(name)).collect();
    for aggregate in &aggregates {
        timed_refresh(pool, config, aggregate).await?;
    }
    let mut samples = Vec::new();
    for run in 0..options.repeat {
        let traffic = render(MINUTE, &[("run", &format!("{}{run}", config.registry().len()))]);
        sqlx::raw_sql(AssertSqlSafe(traffic)).execute(pool).await.map_err(failed("a minute of traffic"))?;
        let started = Instant::now();
        for aggregate in &aggregates {
            timed_refresh(pool, config, aggregate).await?;
        }
        samples.push(started.elapsed());
    }
    for aggregate in &aggregates {
        super::refresh::verify(pool, config, aggregate).await?;
    }
    Ok(median(samples))
}

/// COPY and single-row INSERTs into the empty month of 2100, without the
/// triggers and with those of the three aggregates in incremental mode.
/// Each single-row INSERT commits on its own, so its time is mostly the
/// commit's WAL flush, which varies with the disk from one second to the
/// next: the INSERTs run in blocks of [`BLOCK`], alternating without and
/// with the triggers, and the median block of each is reported per
/// [`SINGLE_ROWS`] INSERTs.
pub(super) async fn writer_cost(pool: &PgPool, copy_rows: u64, repeat: u32) -> Result<WriterCost, Error> {
    let files = Files::write()?;
    let without = files.config("concurrently")?;
    let with = files.config("incremental")?;
    let (mut copies, mut blocks) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    let switch = |config: Arc<Config>| async move {
        triggers::ensure(pool, &config).await.map_err(|e| Error::runtime("bench: triggers", e.to_string()))
    };
    for _ in 0..repeat.max(1) {
        for (index, config) in [&without, &with].into_iter().enumerate() {
            switch(config.clone()).await?;
            copies[index].push(copy(pool, copy_rows).await?);
            clear(pool).await?;
        }
    }
    let mut single_marks = 0;
    for round in 0..(SINGLE_ROWS / BLOCK) * repeat.max(1) as usize {
        for (index, config) in [&without, &with].into_iter().enumerate() {
            switch(config.clone()).await?;
            blocks[index].push(single_rows(pool, round * BLOCK).await?);
            if index == 1 {
                single_marks += sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tally.invalidations")
                    .fetch_one(pool)
                    .await
                    .map_err(failed("counting marks"))?;
            }
            clear(pool).await?;
        }
    }
    switch(without.clone()).await?;
    let [copy_without, copy_with] = copies.map(median);
    let per_run = (SINGLE_ROWS / BLOCK) as u32;
    let [single_without, single_with] = blocks.map(|b| median(b) * per_run);
    Ok(WriterCost {
        copy_rows,
        copy: [copy_without, copy_with],
        single: [single_without, single_with],
        single_marks: single_marks / i64::from(repeat.max(1)),
    })
}

/// [`BLOCK`] single-row INSERTs, each its own statement and transaction.
async fn single_rows(pool: &PgPool, first: usize) -> Result<Duration, Error> {
    let started = Instant::now();
    for n in first..first + BLOCK {
        sqlx::query(
            "INSERT INTO web.pageviews (website_id, url_path, referrer, visitor_id, ts)
             VALUES ($1, $2, 'google', md5($3)::uuid, '2100-01-15 12:00+00')",
        )
        .bind(1 + (n % 20) as i32)
        .bind(format!("/p/{}", n % 200))
        .bind(n.to_string())
        .execute(pool)
        .await
        .map_err(failed("a single-row INSERT"))?;
    }
    Ok(started.elapsed())
}

async fn clear(pool: &PgPool) -> Result<(), Error> {
    sqlx::raw_sql("TRUNCATE web.pageviews_2100_01; DELETE FROM tally.invalidations")
        .execute(pool)
        .await
        .map_err(failed("clearing the writer-cost month"))?;
    Ok(())
}

/// COPYs `rows` page views (text format) into January 2100.
async fn copy(pool: &PgPool, rows: u64) -> Result<Duration, Error> {
    let mut conn = pool.acquire().await.map_err(failed("connecting"))?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY web.pageviews (website_id, url_path, referrer, visitor_id, ts) FROM STDIN")
        .await
        .map_err(failed("COPY"))?;
    let mut chunk = String::new();
    for n in 0..rows {
        chunk.push_str(&format!(
            "{}\t/p/{}\tgoogle\t00000000-0000-0000-0000-{:012}\t2100-01-{:02} 12:00:00+00\n",
            1 + n % 20,
            n % 200,
            n % 50_000,
            1 + n % 28
        ));
        if chunk.len() > 1 << 20 {
            copy.send(chunk.as_bytes()).await.map_err(failed("COPY"))?;
            chunk.clear();
        }
    }
    copy.send(chunk.as_bytes()).await.map_err(failed("COPY"))?;
    copy.finish().await.map_err(failed("COPY"))?;
    Ok(started.elapsed())
}

/// The Markdown tables.
pub(super) fn table(results: &[DeclaredResult], cost: Option<&WriterCost>, options: &BenchOptions) -> String {
    let mut out = format!(
        "Declared aggregates over a foreign table (web.pageviews, partitioned by month, {} days), one changed day \
         (about 1% of its rows); median of {} runs\n\n\
         | rows | rows changed | build | REFRESH CONCURRENTLY (the user's MV) | incremental (tally) | days rewritten | ratio |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        options.days, options.repeat
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.rows,
            r.rows_changed,
            show(r.build),
            show(r.concurrently),
            show(r.incremental),
            r.days_refreshed,
            ratio(r.concurrently, r.incremental)
        ));
    }
    out.push_str(
        "\nThe whole cycle: daily_pages, daily_owners and daily_referrers refreshed after a minute of traffic \
         (5,000 new rows, 20 late ones three days back)\n\n\
         | rows | all concurrently | all incremental | ratio |\n|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.rows,
            show(r.cycle[0]),
            show(r.cycle[1]),
            ratio(r.cycle[0], r.cycle[1])
        ));
    }
    if let Some(cost) = cost {
        let extra = |pair: [Duration; 2]| (pair[1].as_secs_f64() / pair[0].as_secs_f64().max(1e-9) - 1.0) * 100.0;
        out.push_str(&format!(
            "\nWhat the triggers of the three incremental aggregates cost the table's writers (median of {})\n\n\
             | write | without triggers | with triggers | extra |\n|---|---:|---:|---:|\n\
             | COPY of {} rows | {} | {} | {:+.0}% |\n\
             | {SINGLE_ROWS} single-row INSERTs | {} | {} | {:+.0}% |\n\n\
             {SINGLE_ROWS} single-row INSERTs leave {} marks in tally.invalidations with the triggers; \
             the INSERTs ran in blocks of {BLOCK}, alternating without and with the triggers (median block × {}).\n",
            options.repeat,
            cost.copy_rows,
            show(cost.copy[0]),
            show(cost.copy[1]),
            extra(cost.copy),
            show(cost.single[0]),
            show(cost.single[1]),
            extra(cost.single),
            cost.single_marks,
            SINGLE_ROWS / BLOCK
        ));
    }
    out
}
