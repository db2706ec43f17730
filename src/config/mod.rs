//! tally's configuration: built-in defaults, overridden by an optional TOML
//! file (`--config PATH` or `TALLY_CONFIG`), validated once at start-up.
//!
//! Every struct denies unknown keys, so a typo is an error that names the
//! file, the key and the reason (exit code 2), never a silently ignored
//! setting. The doc comment on each field is what users read in the README.

pub mod dotenv;
pub mod env;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::aggregates::Aggregate;

pub use values::{
    HumanDuration, Limit, MAX_DURATION, MAX_PG_TIMEOUT, Schedule, Timezone, check_pg_timeout, parse_bounded,
};

/// A configuration problem: which file, which key, and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}; check the path given by --config or TALLY_CONFIG")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: `{key}`: {reason}")]
    Invalid { origin: String, key: String, reason: String },
    #[error("environment variable {name}: {reason}")]
    Env { name: &'static str, reason: String },
    /// `.env` in the working directory; the reason names the file and line.
    #[error("{0}")]
    DotEnv(String),
}

/// The configuration file as written: every key optional, unknown keys rejected.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct ConfigFile {
    /// Calendar days of the aggregates are days in this IANA timezone.
    reporting_timezone: Timezone,
    /// Attribution counts touches less than this many days before a conversion.
    attribution_lookback_days: Option<u32>,
    /// The time-decay model halves a touch's weight every this many days.
    attribution_half_life_days: Option<u32>,
    database: DatabaseConfig,
    partitions: PartitionsConfig,
    refresh: RefreshConfig,
    /// Per-aggregate settings, keyed by aggregate name.
    aggregates: BTreeMap<String, AggregateConfig>,
}

/// The validated configuration the rest of tally reads. Built only by
/// [`Config::load`] / [`Config::from_toml`], so every value in it is valid.
#[derive(Debug, Clone)]
pub struct Config {
    /// Calendar days of the aggregates are days in this IANA timezone.
    pub reporting_timezone: Timezone,
    /// Attribution counts touches less than this many days before a conversion.
    pub attribution_lookback_days: u32,
    /// The time-decay model halves a touch's weight every this many days.
    pub attribution_half_life_days: u32,
    pub database: DatabaseConfig,
    pub partitions: PartitionsConfig,
    pub refresh: RefreshConfig,
    /// When partition maintenance runs.
    pub maintenance_schedule: Schedule,
    /// Effective settings of every rollup in the registry (views have none).
    aggregates: BTreeMap<&'static str, AggregateSettings>,
    /// Every aggregate: tally's own, then those declared in the file, each
    /// after the aggregates it reads.
    registry: Vec<&'static Aggregate>,
}

/// `[database]`: the connection pool and the timeouts tally sets on its sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Most connections tally holds open at once.
    pub max_connections: u32,
    /// Set when connecting through PgBouncer in transaction mode: no
    /// prepared-statement cache, only transaction-scoped advisory locks.
    pub pgbouncer: bool,
    /// Longest a refresh or maintenance statement may run before PostgreSQL cancels it.
    pub statement_timeout: HumanDuration,
    /// Longest tally waits for a table lock before giving up (and retrying later)
    /// instead of queueing in front of application writes.
    pub lock_timeout: HumanDuration,
    /// How long one-shot commands (`migrate`, `refresh`, `status`, ...) keep
    /// retrying a database that is down before they fail. `run` retries forever.
    pub connect_timeout: HumanDuration,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 5,
            pgbouncer: false,
            statement_timeout: HumanDuration(Duration::from_secs(30 * 60)),
            lock_timeout: HumanDuration(Duration::from_secs(5)),
            connect_timeout: HumanDuration(Duration::from_secs(10)),
        }
    }
}

/// `[partitions]`: monthly partitions of `marketing.events`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartitionsConfig {
    /// Future months that always exist besides the current one.
    pub premake_months: u32,
    /// Keep the current month and this many months before it; older months
    /// are detached (and dropped unless `retention_keep_table`). Unset: keep all.
    pub retention_months: Option<u32>,
    /// With retention, detach old months but keep their tables.
    pub retention_keep_table: bool,
    /// Rows per transaction when moving rows out of the default partition.
    pub rescue_batch_rows: u32,
    /// More month-partitioned tables to manage, as `"marketing.NAME"`.
    pub extra_tables: Vec<String>,
    /// When partition maintenance runs (6-field cron, UTC).
    pub maintenance_schedule: String,
}

impl Default for PartitionsConfig {
    fn default() -> Self {
        PartitionsConfig {
            premake_months: 3,
            retention_months: None,
            retention_keep_table: false,
            rescue_batch_rows: 10_000,
            extra_tables: Vec::new(),
            maintenance_schedule: "0 0 * * * *".to_string(),
        }
    }
}

/// `[refresh]`: how aggregate refreshes are run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefreshConfig {
    /// Most refreshes running at once in this process.
    pub max_concurrent: u32,
    /// Attempts per refresh when the failure is transient (lock timeout,
    /// deadlock, serialization failure, lost connection).
    pub max_attempts: u32,
    /// On SIGTERM, how long running refreshes may take to finish before they are cancelled.
    pub shutdown_grace: HumanDuration,
    /// Days of `tally.refresh_runs` history to keep.
    pub history_days: u32,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            max_concurrent: 1,
            max_attempts: 3,
            shutdown_grace: HumanDuration(Duration::from_secs(30)),
            history_days: 30,
        }
    }
}

/// How an aggregate is stored and refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A materialized view refreshed with `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    #[default]
    Concurrently,
    /// A table in which only the days that changed are recomputed.
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Concurrently => "concurrently",
            Mode::Incremental => "incremental",
        }
    }
}

/// `[aggregates.NAME]`, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// `"concurrently"` (default) or `"incremental"`.
    #[serde(default)]
    pub mode: Mode,
    /// 6-field cron (seconds first, UTC), e.g. `"0 */5 * * * *"`.
    pub schedule: Option<String>,
    /// A fixed interval instead of a cron schedule, e.g. `"5m"`.
    pub every: Option<HumanDuration>,
    /// A disabled aggregate is never refreshed.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Your own aggregate: the file holding its one SELECT, relative to the
    /// config file (docs/your-aggregates.md).
    pub sql: Option<PathBuf>,
    /// Your own aggregate's unique key, the day first (default: its GROUP BY columns).
    pub key: Option<Vec<String>>,
}

fn enabled_by_default() -> bool {
    true
}

/// The effective settings of one aggregate, defaults filled in.
#[derive(Debug, Clone)]
pub struct AggregateSettings {
    pub mode: Mode,
    pub schedule: Schedule,
    pub enabled: bool,
}

/// Refreshes run every 5 minutes unless configured otherwise.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);

impl Config {
    /// Loads the file at `path` (or the built-in defaults when `None`) and validates it.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return ConfigFile::default().validate("built-in defaults", Path::new(""));
        };
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        Config::from_toml(&text, path)
    }

    /// Parses and validates TOML text; `path` only names the origin in errors.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        file.validate(&format!("config file {}", path.display()), path.parent().unwrap_or(Path::new("")))
    }

    /// The effective settings of a registered rollup; `None` for a view or an unknown name.
    pub fn aggregate(&self, name: &str) -> Option<&AggregateSettings> {
        self.aggregates.get(name)
    }

    /// Every aggregate, tally's own and those declared in the file, in
    /// dependency order.
    pub fn registry(&self) -> &[&'static Aggregate] {
        &self.registry
    }

    /// The aggregate with this name, tally's own or declared.
    pub fn find(&self, name: &str) -> Option<&'static Aggregate> {
        self.registry.iter().copied().find(|a| a.name == name)
    }

    /// Every aggregate name, in registry order.
    pub fn names(&self) -> Vec<&'static str> {
        self.registry.iter().map(|a| a.name).collect()
    }
}

impl Default for AggregateSettings {
    fn default() -> Self {
        AggregateSettings {
            mode: Mode::Concurrently,
            schedule: Schedule::Every(DEFAULT_REFRESH_INTERVAL),
            enabled: true,
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
