//! What each command does, given parsed arguments: load the config and the
//! environment, connect, call into the library, print results on stdout.
//! Parse → call → print: what a command does lives in its module
//! (`refresh::policy` decides what a refresh covers, `maintenance` what a
//! partitions run does, `ingest` when a run fails); `explain.rs` holds the
//! query doctor's two commands.

mod explain;

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command};
use crate::config::{Config, ConfigError};
use crate::db::{self, DatabaseUrl, Patience};
use crate::demo::{self, DemoOptions, GenerateOptions};
use crate::error::Error;
use crate::http::MetricsAddr;
use crate::metrics::Metrics;
use crate::refresh::Refresher;
use crate::worker::{self, RunOptions};

/// The metrics address unless `TALLY_METRICS_ADDR` says otherwise.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9755";

/// Runs one command to completion: a first SIGTERM/SIGINT asks it to stop
/// gracefully, a second one drops it where it stands.
pub async fn execute(cli: Cli) -> Result<(), Error> {
    let shutdown = CancellationToken::new();
    let force = CancellationToken::new();
    crate::shutdown::cancel_on_signal(shutdown.clone(), force.clone())
        .map_err(|e| Error::runtime("installing signal handlers", e.to_string()))?;
    tokio::select! {
        result = run_command(cli, shutdown) => result,
        _ = force.cancelled() => Err(Error::Forced),
    }
}

async fn run_command(cli: Cli, shutdown: CancellationToken) -> Result<(), Error> {
    if let Command::Healthcheck = cli.command {
        let addr = metrics_addr()?;
        return crate::http::healthcheck(&addr).await.map_err(|e| Error::runtime("healthcheck", e));
    }
    let config = Arc::new(Config::load(cli.config.as_deref())?);
    match cli.command {
        Command::Demo { events, seed, days, once } => {
            let options = DemoOptions {
                generate: GenerateOptions { events, seed, days, ..GenerateOptions::default() },
                once,
                run: RunOptions { migrate: true, metrics_addr: metrics_addr()? },
            };
            demo::run(config, DatabaseUrl::from_env()?, options, shutdown).await
        }
        Command::Ingest { file, rejects, skip_lines, allow_rejects, batch_rows, max_line_bytes } => {
            let options = crate::ingest::IngestOptions {
                batch_rows: batch_rows as usize,
                max_line_bytes: max_line_bytes as usize,
                skip_lines,
                rejects,
                ..Default::default()
            };
            ingest(&config, &crate::ingest::Source::from_argument(&file), &options, allow_rejects, &shutdown).await
        }
        Command::Bench {
            events,
            days,
            seed,
            repeat,
            copy_rows,
            ingest_rows,
            dashboard_runs,
            soak,
            soak_events,
            declared,
        } => {
            let soak = soak.map(|duration| crate::bench::SoakOptions::new(duration, soak_events, seed));
            let options = crate::bench::BenchOptions {
                sizes: events,
                days,
                seed,
                repeat,
                copy_rows,
                ingest_rows,
                dashboard_runs,
                soak,
                declared,
            };
            crate::bench::run(config, DatabaseUrl::from_env()?, options, shutdown).await
        }
        Command::Run { no_migrate } => {
            let options = RunOptions { migrate: !no_migrate, metrics_addr: metrics_addr()? };
            worker::run(config, &required_url()?, options, shutdown).await
        }
        Command::Migrate => {
            let url = required_url()?;
            let pool = connect_one(&config, &url, &shutdown).await?;
            db::migrate(&pool, &url, &config.database).await?;
            crate::aggregates::features::prepare(&pool).await;
            Ok(())
        }
        Command::Partitions { dry_run } => partitions(&config, dry_run, &shutdown).await,
        Command::Refresh { names, wait } => refresh(config, &names, wait, shutdown).await,
        Command::Status { json } => status(&config, json, &shutdown).await,
        Command::Explain { sql, file, no_analyze, json, settings, timeout, min_cost_cut, audit, min_stats_age } => {
            let request = explain::Request { sql, file, analyze: !no_analyze, json, settings, timeout, min_cost_cut };
            explain::explain_or_audit(&config, request, audit, min_stats_age, &shutdown).await
        }
        Command::Doctor { json, workload: true, top, min_cost_cut, .. } => {
            let options = crate::doctor::workload::WorkloadOptions { top, min_cost_cut };
            explain::workload(&config, json, &options, &shutdown).await
        }
        Command::Doctor { json, min_stats_age, .. } => explain::doctor(&config, json, min_stats_age, &shutdown).await,
        Command::Healthcheck => Ok(()),
    }
}

/// JSON output of a command.
fn to_json(value: &impl serde::Serialize) -> Result<String, Error> {
    serde_json::to_string_pretty(value).map_err(|e| Error::runtime("writing JSON", e.to_string()))
}

async fn partitions(config: &Config, dry_run: bool, shutdown: &CancellationToken) -> Result<(), Error> {
    let pool = connect(config, &required_url()?, shutdown).await?;
    let reports = crate::maintenance::run(&pool, config, Utc::now().date_naive(), dry_run, shutdown).await;
    print!("{}", crate::partitions::render_reports(&reports));
    let failures: Vec<String> = reports.iter().flat_map(|r| r.failures()).collect();
    match failures.is_empty() {
        true => Ok(()),
        false => Err(Error::runtime("partition maintenance", failures.join("; "))),
    }
}

async fn refresh(
    config: Arc<Config>,
    names: &[String],
    wait: std::time::Duration,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let selected = crate::refresh::policy::select(&config, names)?;
    let pool = connect_one(&config, &required_url()?, &shutdown).await?;
    crate::aggregates::declared::check_days(&pool, &config).await.map_err(Error::Usage)?;
    let metrics = Arc::new(Metrics::new(&crate::refresh::policy::metric_series(&config)));
    let refresher = Refresher::new(pool, config.clone(), metrics, shutdown).waiting_for_locks(wait);
    let mut failures = Vec::new();
    for aggregate in selected {
        let (line, failure) = match refresher.refresh(aggregate).await {
            Ok(report) => crate::refresh::render::line(&report, wait),
            Err(why) => {
                crate::refresh::render::not_started(aggregate.name, why, names.iter().any(|n| n == aggregate.name))
            }
        };
        println!("{line}");
        failures.extend(failure);
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(Error::runtime("refresh", failures.join("; "))),
    }
}

async fn ingest(
    config: &Config,
    source: &crate::ingest::Source,
    options: &crate::ingest::IngestOptions,
    allow_rejects: bool,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    // A usage error, found before connecting (and before reading anything).
    if let Some(rejects) = &options.rejects {
        crate::ingest::rejects_file::check(source, rejects).map_err(Error::Usage)?;
    }
    let pool = connect(config, &required_url()?, shutdown).await?;
    let summary =
        crate::ingest::ingest(&pool, source, options, shutdown).await.map_err(|e| Error::runtime("ingest", e))?;
    println!("{summary}");
    for warning in &summary.warnings {
        eprintln!("tally: warning: {warning}");
    }
    match summary.failure(options.skip_lines, options.rejects.as_deref(), allow_rejects) {
        Some(failure) => Err(Error::runtime(format!("ingest of {}", summary.source), failure)),
        None => Ok(()),
    }
}

async fn status(config: &Config, json: bool, shutdown: &CancellationToken) -> Result<(), Error> {
    let pool = connect_one(config, &required_url()?, shutdown).await?;
    let status = crate::status::collect(&pool, config, Utc::now())
        .await
        .map_err(|e| Error::database("reading status (has `tally migrate` run?)", &e))?;
    match json {
        true => println!("{}", to_json(&status)?),
        false => print!("{}", crate::status::render_text(&status)),
    }
    Ok(())
}

async fn connect(config: &Config, url: &DatabaseUrl, shutdown: &CancellationToken) -> Result<sqlx::PgPool, Error> {
    Ok(db::connect(url, &config.database, Patience::For(config.database.connect_timeout.0), shutdown).await?)
}

/// A pool of one session, for commands that do one thing after another
/// (`refresh`, `status`, `migrate`): a connection handed back is reused by
/// the next query instead of a second one being opened while the first is
/// still on its way back to the pool.
async fn connect_one(config: &Config, url: &DatabaseUrl, shutdown: &CancellationToken) -> Result<sqlx::PgPool, Error> {
    let database = crate::config::DatabaseConfig { max_connections: 1, ..config.database.clone() };
    Ok(db::connect(url, &database, Patience::For(config.database.connect_timeout.0), shutdown).await?)
}

fn required_url() -> Result<DatabaseUrl, Error> {
    DatabaseUrl::from_env()?.ok_or_else(|| {
        Error::Usage(
            "DATABASE_URL is not set; set it in the environment or in a .env file, \
             e.g. DATABASE_URL=postgres://tally:PASSWORD@localhost:5432/marketing"
                .to_string(),
        )
    })
}

fn metrics_addr() -> Result<MetricsAddr, Error> {
    let text = crate::config::env::Environment::read().metrics_addr.unwrap_or_else(|| DEFAULT_METRICS_ADDR.to_string());
    MetricsAddr::parse(&text).map_err(|reason| Error::Config(ConfigError::Env { name: "TALLY_METRICS_ADDR", reason }))
}

/// Loads `.env` from the working directory (not its parents); variables
/// already in the environment win. Returns warnings to log once logging is up.
pub fn load_dotenv() -> Result<Vec<String>, Error> {
    Ok(crate::config::dotenv::load(Path::new(".env"))?)
}
