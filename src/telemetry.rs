//! Logging: `tracing` to stderr (stdout is for command output), filtered by
//! `RUST_LOG` (default `info`), as text or JSON (`TALLY_LOG_FORMAT`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Fails on an unknown `TALLY_LOG_FORMAT`.
pub fn init() -> Result<(), String> {
    // The scheduler's lifecycle chatter and PostgreSQL's NOTICEs ("already
    // exists, skipping") are not news at info level.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_cron_scheduler=warn,sqlx::postgres::notice=warn"));
    let format = crate::config::env::Environment::read().log_format.unwrap_or_else(|| "text".to_string());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format.as_str() {
        "text" | "" => builder.try_init(),
        "json" => builder.json().try_init(),
        other => return Err(format!("TALLY_LOG_FORMAT `{other}` is not known; use \"text\" or \"json\"")),
    }
    .map_err(|e| format!("could not install the logger: {e}"))
}
