//! `tally bench --soak DURATION`: the worker as users run it, for a bounded
//! time, under continuous ingest and refreshes every few seconds. A real
//! `tally run` process (its memory is what is measured), `tally ingest`
//! processes feeding it NDJSON, and samples of the worker's resident memory,
//! its connections and the refresh history. At the end the worker is
//! stopped with SIGTERM and the aggregates are compared with a computation
//! from scratch.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{RngExt, SeedableRng};
use sqlx::PgPool;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::aggregates::{self, Kind};
use crate::config::Config;
use crate::db::DatabaseUrl;
use crate::demo::{GenerateOptions, generate};
use crate::error::Error;

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

#[derive(Debug, Clone)]
struct Sample {
    elapsed: Duration,
    rss_kb: u64,
    connections: i64,
    successes: i64,
    failures: i64,
    events: i64,
    history_rows: i64,
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

/// NDJSON event documents in the brief's shape, over the last 30 days.
fn lines(rng: &mut rand::rngs::StdRng, count: usize) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(count * 200);
    for _ in 0..count {
        let at = now - rng.random_range(0..30 * 86_400_000i64);
        let event = ["page_view", "page_view", "page_view", "signup", "purchase"][rng.random_range(0..5)];
        let source = ["google", "newsletter", "linkedin", "facebook"][rng.random_range(0..4)];
        let revenue = if event == "purchase" { rng.random_range(10..500) } else { 0 };
        let _ = writeln!(
            out,
            r#"{{"_id":"soak-{}","userId":"u{}","event":"{event}","session":"s{}","timestamp":{{"$date":{{"$numberLong":"{at}"}}}},"properties":{{"utm_source":"{source}","utm_medium":"cpc","utm_campaign":"soak","revenue":{revenue}}}}}"#,
            rng.random::<u64>(),
            rng.random_range(0..5000),
            rng.random_range(0..20000),
        );
    }
    out
}

async fn ingest(exe: &std::path::Path, url: &DatabaseUrl, input: &[u8]) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args(["ingest", "-"])
        .env("DATABASE_URL", url.expose())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(&input).await.map_err(|e| e.to_string())
        // Dropping stdin closes the pipe: the end of the input.
    });
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    writer.await.map_err(|e| e.to_string())??;
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

async fn seed_old_history(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO tally.refresh_runs (aggregate, mode, started_at, finished_at, outcome, rows)
         SELECT 'daily_event_counts', 'concurrently', now() - interval '3 days' - g * interval '1 minute',
                now() - interval '3 days' - g * interval '1 minute' + interval '1 second', 'success', 1
         FROM generate_series(1, 200) AS g",
    )
    .execute(pool)
    .await?;
    Ok(result.rows_affected() as i64)
}

async fn sample(
    pool: &PgPool,
    pid: u32,
    elapsed: Duration,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Sample, sqlx::Error> {
    let rss_kb = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    let connections: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'tally' AND pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await?;
    let (successes, failures): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE outcome = 'success'), count(*) FILTER (WHERE outcome = 'failure')
         FROM tally.refresh_runs WHERE started_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM marketing.events").fetch_one(pool).await?;
    let history_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM tally.refresh_runs").fetch_one(pool).await?;
    Ok(Sample { elapsed, rss_kb, connections, successes, failures, events, history_rows })
}

/// SIGTERM, then the exit code (killed after a minute).
async fn stop(worker: &mut Child) -> Option<i32> {
    if let Some(pid) = worker.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
    }
    match tokio::time::timeout(Duration::from_secs(60), worker.wait()).await {
        Ok(Ok(status)) => status.code(),
        _ => {
            let _ = worker.kill().await;
            None
        }
    }
}

/// Refreshes once more (the last ingest may be newer than the last refresh),
/// then counts rows that differ from a computation from scratch, per aggregate.
async fn verify(pool: &PgPool, config: &Arc<Config>) -> Result<Vec<(&'static str, i64)>, Error> {
    let metrics = Arc::new(crate::metrics::Metrics::new(&crate::refresh::policy::metric_series(config)));
    let refresher = crate::refresh::Refresher::new(pool.clone(), config.clone(), metrics, CancellationToken::new());
    let mut differences = Vec::new();
    for aggregate in aggregates::REGISTRY.iter().filter(|a| a.kind != Kind::View) {
        refresher.refresh(aggregate).await;
        let n = super::differences(pool, config, aggregate).await?;
        differences.push((aggregate.name, n));
    }
    Ok(differences)
}

struct Summary {
    ingested: u64,
    ingest_runs: u32,
    ingest_failures: u32,
    old_history_inserted: i64,
    old_history_left: i64,
    differences: Vec<(&'static str, i64)>,
    exit: Option<i32>,
    errors: usize,
    max_connections: u32,
}

fn report(options: &SoakOptions, samples: &[Sample], s: Summary) -> String {
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let mut out = format!(
        "Soak: `tally run` for {} with every aggregate refreshing every {REFRESH_EVERY} ({}, max_concurrent 2), a \
         `tally ingest` of {} events every {}, partition maintenance and history pruning every minute; {} events at \
         the start.\n\n\
         | elapsed | worker RSS | worker connections | refreshes ok | refresh failures | events | refresh_runs rows |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        humantime::format_duration(options.duration),
        modes(),
        options.ingest_lines,
        humantime::format_duration(options.ingest_every),
        options.initial_events,
    );
    for sample in samples {
        let _ = writeln!(
            out,
            "| {}s | {} | {} | {} | {} | {} | {} |",
            sample.elapsed.as_secs(),
            mb(sample.rss_kb),
            sample.connections,
            sample.successes,
            sample.failures,
            sample.events,
            sample.history_rows
        );
    }
    let rss: Vec<u64> = samples.iter().map(|s| s.rss_kb).filter(|kb| *kb > 0).collect();
    let (first, last, max) =
        (rss.first().copied().unwrap_or(0), rss.last().copied().unwrap_or(0), rss.iter().copied().max().unwrap_or(0));
    // Growth after warm-up: the second half against the first.
    let half = rss.len() / 2;
    let avg = |v: &[u64]| if v.is_empty() { 0.0 } else { v.iter().sum::<u64>() as f64 / v.len() as f64 };
    let max_connections = samples.iter().map(|s| s.connections).max().unwrap_or(0);
    let last_sample = samples.last();
    let _ = write!(
        out,
        "\n- Worker RSS: first sample {}, last {}, max {}; mean of the second half {} vs first half {}.\n\
         - Worker connections: at most {max_connections} (pool size {}).\n\
         - Refreshes: {} successful, {} failed; worker log lines at ERROR: {}.\n\
         - Ingest: {} runs, {} failed, {} events loaded; {} events in the database at the end.\n\
         - History: {} rows older than history_days inserted during the run, {} left at the end.\n\
         - Aggregates compared with a computation from scratch after a last refresh: {}.\n\
         - Worker exit code after SIGTERM: {}.\n",
        mb(first),
        mb(last),
        mb(max),
        mb(avg(&rss[half..]) as u64),
        mb(avg(&rss[..half]) as u64),
        s.max_connections,
        last_sample.map_or(0, |l| l.successes),
        last_sample.map_or(0, |l| l.failures),
        s.errors,
        s.ingest_runs,
        s.ingest_failures,
        s.ingested,
        last_sample.map_or(0, |l| l.events),
        s.old_history_inserted,
        s.old_history_left,
        s.differences.iter().map(|(n, d)| format!("{n} {d} rows differ")).collect::<Vec<_>>().join(", "),
        s.exit.map_or("none (killed)".to_string(), |c| c.to_string()),
    );
    out
}
