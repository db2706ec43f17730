//! Test harness: everything test files share, so that they import from
//! here and never from each other.
//!
//! - `database`: the PostgreSQL server, a fresh database per test, teardown;
//! - `process`: the `tally` binary run as a real process;
//! - `wait`: polling for a condition, and locks held and waited for;
//! - here: a config from TOML, the worker's endpoints, external tools and
//!   the repository's files.

mod database;
mod process;
mod wait;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use tally::config::Config;

pub use database::{TestDb, server_url};
pub use process::{Finished, Running, TallyCommand, tally};
pub use wait::wait_until;

/// A validated config from TOML text.
pub fn config(toml: &str) -> Arc<Config> {
    Arc::new(Config::from_toml(toml, Path::new("test.toml")).expect("test config is valid"))
}

/// A loopback address nothing listens on right now.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

/// The value of one series in Prometheus text, e.g. `tally_partitions{table="marketing.events"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

/// GET a path on a worker's metrics address; `None` while it does not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    tally::http::get(addr, path).await.ok()
}

/// An external program the deployment tests drive (promtool, prometheus,
/// hadolint). `None` (and a note on stderr) when it is not installed, unless
/// `TALLY_REQUIRE_TOOLS` is set, as `.ci/run` does: then a missing tool fails
/// the test.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("TALLY_REQUIRE_TOOLS").is_none(),
            "{name} is not on PATH, and TALLY_REQUIRE_TOOLS says it must be: install it as .ci/run does"
        );
        eprintln!("note: {name} is not installed; this check runs where it is (.ci/run installs it)");
    }
    found
}

/// The repository root, where the deployment files live.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
