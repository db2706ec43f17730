//! `tally bench`: the measurements behind BENCHMARKS.md, taken in one run on
//! one machine so they can be compared as ratios: incremental refresh against
//! `REFRESH MATERIALIZED VIEW CONCURRENTLY` and a plain `REFRESH` of the same
//! aggregate at several data sizes, the whole refresh cycle of every
//! aggregate in each mode, and the ingest overhead of the invalidation
//! triggers on a large COPY.
//!
//! Each size gets a database of its own (`tally_bench_<events>`), created on
//! the `DATABASE_URL` server (or a throwaway cluster) and dropped afterwards.

mod attribution;
mod copy;
mod cycle;
mod dashboards;
mod declared;
mod ingest;
mod live;
mod refresh;
mod sketches;
mod soak;

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::db::{self, DatabaseUrl, Patience};
use crate::error::Error;

pub use copy::CopyResult;
pub use refresh::RefreshResult;
pub use soak::SoakOptions;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Data sizes, in events.
    pub sizes: Vec<u64>,
    /// Days of history the events spread over.
    pub days: u32,
    pub seed: u32,
    /// Measurements per figure; the median is reported.
    pub repeat: u32,
    /// Rows per COPY for the trigger-overhead figure (0: skip it).
    pub copy_rows: u64,
    /// Rows for the ingest-vs-COPY figure (0: skip it).
    pub ingest_rows: u64,
    /// Runs of each dashboard query (0: skip them).
    pub dashboard_runs: u32,
    /// Run the soak instead of the other measurements.
    pub soak: Option<SoakOptions>,
    /// Measure aggregates declared over a foreign table instead.
    pub declared: bool,
}

/// Runs the benchmark and prints a Markdown report on stdout.
pub async fn run(
    config: Arc<Config>,
    url: Option<DatabaseUrl>,
    options: BenchOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let report =
        db::with_server(url, |server| async move { measure(&config, &server, &options, &shutdown).await }).await?;
    println!("{report}");
    Ok(())
}

async fn measure(
    config: &Arc<Config>,
    server: &DatabaseUrl,
    options: &BenchOptions,
    shutdown: &CancellationToken,
) -> Result<String, Error> {
    let admin =
        db::connect(server, &config.database, Patience::For(config.database.connect_timeout.0), shutdown).await?;
    let mut report = machine(&admin).await.map_err(|e| Error::database("reading the server version", &e))?;
    if let Some(soak) = &options.soak {
        report.push_str(&soak::run(&admin, server, config, soak, shutdown).await?);
        return Ok(report);
    }
    if options.declared {
        report.push_str(&measure_declared(&admin, server, config, options, shutdown).await?);
        return Ok(report);
    }
    let mut refreshes = Vec::new();
    let mut attributions = Vec::new();
    let mut cycles = Vec::new();
    let mut sketch_costs = Vec::new();
    let mut copy = None;
    let mut ingested = None;
    let mut dashboards = None;
    let mut live_reads = None;
    for (index, events) in options.sizes.iter().enumerate() {
        let name = format!("tally_bench_{events}");
        let pool = fresh_database(&admin, server, config, &name, shutdown).await?;
        let measured = refresh::measure(&pool, config, *events, options).await;
        if measured.is_ok() && features(&pool).await?.sketches {
            sketch_costs.push(sketches::measure(&pool, config, *events, options).await?);
        }
        let last = index + 1 == options.sizes.len();
        let copied = match (&measured, last && options.copy_rows > 0) {
            (Ok(_), true) => Some(copy::measure(&pool, config, options.copy_rows, options.repeat).await),
            _ => None,
        };
        if measured.is_ok() && last && options.dashboard_runs > 0 {
            dashboards = Some((*events, dashboards::measure(&pool, config, options.dashboard_runs).await));
            live_reads = Some((*events, live::measure(&pool, config, options.dashboard_runs).await));
        }
        if measured.is_ok() && last && options.ingest_rows > 0 {
            ingested = Some(ingest::measure(&pool, config, options.ingest_rows, options.repeat).await);
        }
        // Last on this database: it leaves daily_attribution incremental.
        let attributed = match &measured {
            Ok(_) => Some(
                async {
                    settle(&pool).await?;
                    attribution::measure(&pool, config, *events, options).await
                }
                .await,
            ),
            Err(_) => None,
        };
        // After that: it puts every rollup in each mode in turn.
        let cycled = match &measured {
            Ok(_) => Some(
                async {
                    settle(&pool).await?;
                    cycle::measure(&pool, &server.with_database(&name), config, *events, options).await
                }
                .await,
            ),
            Err(_) => None,
        };
        pool.close().await;
        drop_database(&admin, &name).await;
        refreshes.push(measured?);
        if let Some(attributed) = attributed {
            attributions.push(attributed?);
        }
        if let Some(cycled) = cycled {
            cycles.push(cycled?);
        }
        if let Some(copied) = copied {
            copy = Some(copied?);
        }
    }
    report.push_str(&refresh::table(&refreshes, options));
    if !sketch_costs.is_empty() {
        report.push_str(&sketches::table(&sketch_costs, options));
    }
    report.push_str(&attribution::table(&attributions, options));
    report.push_str(&cycle::table(&cycles, options));
    if let Some(copy) = copy {
        report.push_str(&copy::table(&copy));
    }
    if let Some(ingested) = ingested {
        report.push_str(&ingest::table(&ingested?));
    }
    if let Some((events, timings)) = dashboards {
        report.push_str(&dashboards::table(events, options.dashboard_runs, &timings?));
    }
    if let Some((events, timings)) = live_reads {
        report.push_str(&live::table(events, options.dashboard_runs, &timings?));
    }
    Ok(report)
}

/// `--declared`: per size, a fresh database with the foreign schema; the
/// writer cost on the largest.
async fn measure_declared(
    admin: &PgPool,
    server: &DatabaseUrl,
    config: &Config,
    options: &BenchOptions,
    shutdown: &CancellationToken,
) -> Result<String, Error> {
    let mut results = Vec::new();
    let mut cost = None;
    for (index, rows) in options.sizes.iter().enumerate() {
        let name = format!("tally_bench_declared_{rows}");
        let pool = fresh_database(admin, server, config, &name, shutdown).await?;
        let measured = declared::measure(&pool, *rows, options).await;
        if measured.is_ok() && index + 1 == options.sizes.len() && options.copy_rows > 0 {
            cost = Some(declared::writer_cost(&pool, options.copy_rows, options.repeat).await);
        }
        pool.close().await;
        drop_database(admin, &name).await;
        results.push(measured?);
    }
    let cost = cost.transpose()?;
    Ok(declared::table(&results, cost.as_ref(), options))
}

/// The machine and server, for the report's header.
async fn machine(pool: &PgPool) -> Result<String, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(pool).await?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse::<u64>().unwrap_or(0))
        })
        .map_or("unknown".to_string(), |kb| format!("{} GiB", kb / 1024 / 1024));
    Ok(format!(
        "Machine: {cores} cores ({cpu}), {memory} RAM; {version}\nDate: {}\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ))
}

async fn fresh_database(
    admin: &PgPool,
    server: &DatabaseUrl,
    config: &Config,
    name: &str,
    shutdown: &CancellationToken,
) -> Result<PgPool, Error> {
    drop_database(admin, name).await;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {}", db::quote_ident(name))))
        .execute(admin)
        .await
        .map_err(|e| Error::database(format!("creating database {name} (the role needs CREATEDB)"), &e))?;
    let url = server.with_database(name);
    let pool = db::connect(&url, &config.database, Patience::For(Duration::from_secs(10)), shutdown).await?;
    db::migrate(&pool, &url, &config.database).await?;
    crate::aggregates::features::prepare(&pool).await;
    Ok(pool)
}

async fn drop_database(admin: &PgPool, name: &str) {
    let _ = sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db::quote_ident(name))))
        .execute(admin)
        .await;
}

/// Brings the bench database to the steady state of a database in use:
/// `VACUUM (ANALYZE)`, so that the tables the bench just wrote (millions of
/// generated events, the COPY and ingest figures' rows) are not vacuumed by
/// autovacuum during the next measurement, and the planner knows them.
pub(crate) async fn settle(pool: &PgPool) -> Result<(), Error> {
    sqlx::raw_sql("VACUUM (ANALYZE)")
        .execute(pool)
        .await
        .map_err(|e| Error::database("vacuuming the bench database", &e))?;
    Ok(())
}

/// What the bench database offers the definitions (visitor sketches).
async fn features(pool: &PgPool) -> Result<crate::aggregates::Features, Error> {
    let mut conn = pool.acquire().await.map_err(|e| Error::database("connecting", &e))?;
    crate::aggregates::Features::detect(&mut conn).await.map_err(|e| Error::database("reading features", &e))
}

/// Rows in which `aggregate` differs from its definition computed from scratch
/// (0: the figures measured on it mean something).
pub(crate) async fn differences(
    pool: &PgPool,
    config: &Config,
    aggregate: &crate::aggregates::Aggregate,
) -> Result<i64, Error> {
    let definition = aggregate.definition(config, features(pool).await?);
    sqlx::query_scalar(AssertSqlSafe(format!(
        // Rows compared as text: a visitor sketch (hll) has no equality for EXCEPT.
        "SELECT count(*) FROM ((SELECT t::text FROM {t} AS t EXCEPT ALL SELECT d::text FROM ({definition}) AS d)
                               UNION ALL (SELECT d::text FROM ({definition}) AS d EXCEPT ALL SELECT t::text FROM {t} AS t)) AS x",
        t = aggregate.qualified_name()
    )))
    .fetch_one(pool)
    .await
    .map_err(|e| Error::database(format!("comparing {} with its definition", aggregate.name), &e))
}

/// The p50 and p95 of some durations (at least one).
pub(crate) fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    (at(0.5), at(0.95))
}

/// The median of some durations.
pub(crate) fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// How many times `fast` fits in `slow`, for the report (`"93×"`).
pub(crate) fn ratio(slow: Duration, fast: Duration) -> String {
    format!("{:.0}×", slow.as_secs_f64() / fast.as_secs_f64().max(1e-9))
}

/// A duration for the report: milliseconds below 10 s, seconds above.
pub(crate) fn show(duration: Duration) -> String {
    if duration < Duration::from_secs(10) {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}
