//! `tally explain` and `tally doctor`: the query doctor's commands.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{connect, required_url, to_json};
use crate::config::Config;
use crate::error::Error;

/// What `tally explain` was asked, as parsed.
pub struct Request {
    pub sql: Option<String>,
    pub file: Option<String>,
    pub analyze: bool,
    pub json: bool,
    pub settings: Vec<String>,
    pub timeout: Duration,
    /// `--min-cost-cut`, a fraction.
    pub min_cost_cut: f64,
}

/// `tally explain`: a statement's plan and findings, or with `--audit` the
/// index audit of `tally doctor`.
pub async fn explain_or_audit(
    config: &Config,
    request: Request,
    audit: bool,
    min_stats_age: Option<Duration>,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    if audit {
        let min_stats_age = min_stats_age.unwrap_or(crate::doctor::audit::DEFAULT_MIN_AGE);
        return doctor(config, request.json, min_stats_age, shutdown).await;
    }
    if min_stats_age.is_some() {
        return Err(Error::Usage(
            "--min-stats-age applies to the index audit: add --audit, or use tally doctor".into(),
        ));
    }
    let statement = match (request.sql, request.file) {
        (Some(sql), _) => sql,
        (None, Some(file)) => read_statement(&file)?,
        (None, None) => {
            return Err(Error::Usage(
                "tally explain needs a statement: tally explain 'SELECT ...', --file FILE, --file - (stdin), or --audit"
                    .into(),
            ));
        }
    };
    let options = crate::doctor::ExplainOptions {
        analyze: request.analyze,
        settings: request.settings.iter().map(|s| crate::doctor::parse_setting(s)).collect::<Result<_, _>>()?,
        timeout: request.timeout,
        reporting_timezone: config.reporting_timezone.tz(),
        min_cost_cut: request.min_cost_cut,
    };
    let pool = connect(config, &required_url()?, shutdown).await?;
    let report = crate::doctor::explain(&pool, &statement, &options).await?;
    match request.json {
        true => println!("{}", to_json(&report)?),
        false => print!("{}", crate::doctor::render_report(&report)),
    }
    Ok(())
}

/// `tally doctor`: the index audit.
pub async fn doctor(
    config: &Config,
    json: bool,
    min_stats_age: Duration,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let pool = connect(config, &required_url()?, shutdown).await?;
    let report = crate::doctor::audit::run(&pool, &crate::doctor::audit::AuditOptions { min_stats_age }).await?;
    match json {
        true => println!("{}", to_json(&report)?),
        false => print!("{}", crate::doctor::render_audit(&report)),
    }
    Ok(())
}

/// `tally doctor --workload`: the index plan for the statements taking the most time.
pub async fn workload(
    config: &Config,
    json: bool,
    options: &crate::doctor::workload::WorkloadOptions,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let pool = connect(config, &required_url()?, shutdown).await?;
    let report = crate::doctor::workload::run(&pool, options).await?;
    match json {
        true => println!("{}", to_json(&report)?),
        false => print!("{}", crate::doctor::workload::render_workload(&report)),
    }
    Ok(())
}

/// The statement of `--file FILE` or `--file -`.
fn read_statement(file: &str) -> Result<String, Error> {
    let mut text = String::new();
    let result = match file {
        "-" => std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| ()),
        path => std::fs::read_to_string(path).map(|t| text = t),
    };
    result.map_err(|e| Error::Usage(format!("cannot read the statement from {file}: {e}")))?;
    Ok(text)
}
