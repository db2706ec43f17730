//! Every environment variable tally reads, read here and nowhere else (the
//! two exceptions are conventions of the libraries: `RUST_LOG`, read by the
//! log filter, and `TALLY_CONFIG`, declared on the `--config` flag). Values
//! are handed out as text; the module that uses one parses it, so that its
//! errors name the variable and say what to write.

use std::ffi::OsString;
use std::path::PathBuf;

/// `DATABASE_URL`: the database (a URL or libpq keyword/value pairs).
pub const DATABASE_URL: &str = "DATABASE_URL";
/// `TALLY_METRICS_ADDR`: where `/metrics`, `/healthz` and `/readyz` listen.
pub const METRICS_ADDR: &str = "TALLY_METRICS_ADDR";
/// `TALLY_LOG_FORMAT`: `text` or `json`.
pub const LOG_FORMAT: &str = "TALLY_LOG_FORMAT";
/// `TALLY_PG_BINDIR`: where `initdb` and `pg_ctl` live, for a throwaway cluster.
pub const PG_BINDIR: &str = "TALLY_PG_BINDIR";

/// The environment as tally sees it. A variable set to an empty string (a
/// compose file's `TALLY_METRICS_ADDR=`) counts as unset.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub database_url: Option<String>,
    pub metrics_addr: Option<String>,
    pub log_format: Option<String>,
    pub pg_bindir: Option<PathBuf>,
    /// `PATH`, searched for `initdb` when `TALLY_PG_BINDIR` is unset.
    pub path: Option<OsString>,
}

impl Environment {
    /// Reads the variables now (after `.env` has been loaded).
    pub fn read() -> Environment {
        let text = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let os = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            database_url: text(DATABASE_URL),
            metrics_addr: text(METRICS_ADDR),
            log_format: text(LOG_FORMAT),
            pg_bindir: os(PG_BINDIR).map(PathBuf::from),
            path: os("PATH"),
        }
    }

    /// Whether `name` is set to something, for `.env` (the environment wins).
    pub fn is_set(name: &str) -> bool {
        std::env::var_os(name).is_some_and(|v| !v.is_empty())
    }
}
