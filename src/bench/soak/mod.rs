//! `tally bench --soak DURATION`: the worker as users run it, for a bounded
//! time, under continuous ingest and refreshes every few seconds. A real
//! `tally run` process (its memory is what is measured), `tally ingest`
//! processes feeding it NDJSON ([`traffic`]), and samples of the worker's
//! resident memory, its connections and the refresh history ([`sampling`]).
//! At the end the worker is stopped with SIGTERM and the aggregates are
//! compared with a computation from scratch ([`report`]).

mod report;
mod sampling;
mod traffic;

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use sqlx::PgPool;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::aggregates::{self, Kind};
use crate::config::Config;
use crate::db::DatabaseUrl;
use crate::demo::{GenerateOptions, generate};
use crate::error::Error;
use report::{Summary, report, verify};
use sampling::{sample, stop};
use traffic::{ingest, lines, seed_old_history};

const DATABASE: &str = "tally_soak";
/// Every aggregate refreshes this often during the soak.
const REFRESH_EVERY: &str = "3s";

/// How long and how hard.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub duration: Duration,
    /// Events in the database before the worker starts.
    pub initial_events: u64,
    /// Lines per `tally ingest` run; one run every `ingest_every`.
    pub ingest_lines: usize,
    pub ingest_every: Duration,
    pub sample_every: Duration,
    pub seed: u32,
}

impl SoakOptions {
    /// A soak of `duration` over `initial_events` events, as `tally bench
    /// --soak` runs it: a 2,000-line ingest every 5 s, a sample every 30 s.
    pub fn new(duration: Duration, initial_events: u64, seed: u32) -> SoakOptions {
        SoakOptions {
            duration,
            initial_events,
            ingest_lines: 2_000,
            ingest_every: Duration::from_secs(5),
            sample_every: Duration::from_secs(30),
            seed,
        }
    }
}

/// Runs the soak in a fresh database on `server` and returns the Markdown report.
pub(super) async fn run(
    admin: &PgPool,
    server: &DatabaseUrl,
    config: &Arc<Config>,
    options: &SoakOptions,
    shutdown: &CancellationToken,
) -> Result<String, Error> {
    let setup = super::fresh_database(admin, server, config, DATABASE, shutdown).await?;
    setup.close().await;
    // The soak's own connections carry another application_name, so that
    // `application_name = 'tally'` counts the worker's alone.
    let url = server.with_database(DATABASE);
    let connect = url.connect_options()?.application_name("tally-soak");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(connect)
        .await
        .map_err(|e| Error::database("connecting to the soak database", &e))?;
    let result = soak(&pool, &url, config, options, shutdown).await;
    pool.close().await;
    super::drop_database(admin, DATABASE).await;
    result
}

async fn soak(
    pool: &PgPool,
    url: &DatabaseUrl,
    config: &Arc<Config>,
    options: &SoakOptions,
    shutdown: &CancellationToken,
) -> Result<String, Error> {
    let failed = |what: &'static str| move |e: sqlx::Error| Error::database(what, &e);
    let generated =
        GenerateOptions { events: options.initial_events, seed: options.seed, days: 30, ..Default::default() };
    generate(pool, config, &generated).await?;
    let dir = tempfile::tempdir().map_err(|e| Error::runtime("soak", e.to_string()))?;
    let config_path = dir.path().join("soak.toml");
    std::fs::write(&config_path, soak_config())
        .map_err(|e| Error::runtime("writing the soak config", e.to_string()))?;
    let soak_config = Arc::new(Config::load(Some(&config_path))?);
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::runtime("finding a free port", e.to_string()))?;
    let log_path = dir.path().join("worker.log");
    let exe = std::env::current_exe().map_err(|e| Error::runtime("soak", e.to_string()))?;
    let log = std::fs::File::create(&log_path).map_err(|e| Error::runtime("soak", e.to_string()))?;
    let mut worker = Command::new(&exe)
        .args(["run"])
        .env("DATABASE_URL", url.expose())
        .env("TALLY_CONFIG", &config_path)
        .env("TALLY_METRICS_ADDR", addr.to_string())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::runtime("starting the worker", e.to_string()))?;
    let pid = worker.id().unwrap_or(0);
    tracing::info!(pid, duration = ?options.duration, "soak: worker started");

    let started = Instant::now();
    let since = chrono::Utc::now();
    let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(options.seed));
    let (mut samples, mut ingested, mut ingest_runs, mut ingest_failures) = (Vec::new(), 0u64, 0u32, 0u32);
    let (mut old_history_inserted, mut next_sample, mut next_ingest) = (0i64, Duration::ZERO, Duration::ZERO);
    while started.elapsed() < options.duration && !shutdown.is_cancelled() {
        if let Ok(Some(status)) = worker.try_wait() {
            return Err(Error::runtime("soak", format!("the worker exited early ({status}); see its log")));
        }
        let elapsed = started.elapsed();
        // Samples first: a `tally ingest` that just exited may still have a session closing.
        if elapsed >= next_sample {
            next_sample += options.sample_every;
            // History older than history_days, for the worker's hourly (here: every minute)
            // pruning to remove; none in the last 90 s, so the last pruning sees all of it.
            if elapsed + Duration::from_secs(90) < options.duration {
                old_history_inserted += seed_old_history(pool).await.map_err(failed("seeding old history"))?;
            }
            samples.push(sample(pool, pid, elapsed, since).await.map_err(failed("sampling"))?);
        }
        if elapsed >= next_ingest {
            next_ingest += options.ingest_every;
            match ingest(&exe, url, &lines(&mut rng, options.ingest_lines)).await {
                Ok(()) => ingested += options.ingest_lines as u64,
                Err(e) => {
                    tracing::warn!(error = %e, "soak: an ingest run failed");
                    ingest_failures += 1;
                }
            }
            ingest_runs += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    samples.push(sample(pool, pid, started.elapsed(), since).await.map_err(failed("sampling"))?);
    let exit = stop(&mut worker).await;
    let old_history_left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tally.refresh_runs WHERE started_at < now() - interval '2 days'")
            .fetch_one(pool)
            .await
            .map_err(failed("counting old history"))?;
    let differences = verify(pool, &soak_config).await?;
    let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let errors = log_text.lines().filter(|l| l.contains(" ERROR ")).count();
    Ok(report(
        options,
        &samples,
        Summary {
            ingested,
            ingest_runs,
            ingest_failures,
            old_history_inserted,
            old_history_left,
            differences,
            exit,
            errors,
            max_connections: soak_config.database.max_connections,
        },
    ))
}

/// Which aggregates run in which mode during the soak.
fn mode_of(name: &str) -> &'static str {
    match name {
        "daily_campaign_metrics" | "daily_event_counts" => "incremental",
        _ => "concurrently",
    }
}

fn modes() -> String {
    let rollups: Vec<&str> = aggregates::REGISTRY.iter().filter(|a| a.kind != Kind::View).map(|a| a.name).collect();
    let incremental = rollups.iter().filter(|n| mode_of(n) == "incremental").count();
    format!("{incremental} incremental, {} concurrently", rollups.len() - incremental)
}

fn soak_config() -> String {
    let mut text = String::from(
        "[partitions]\nmaintenance_schedule = \"0 * * * * *\"\n[refresh]\nmax_concurrent = 2\nhistory_days = 1\n",
    );
    for aggregate in aggregates::REGISTRY.iter().filter(|a| a.kind != Kind::View) {
        let mode = mode_of(aggregate.name);
        let _ = write!(text, "[aggregates.{}]\nmode = \"{mode}\"\nevery = \"{REFRESH_EVERY}\"\n", aggregate.name);
    }
    text
}
