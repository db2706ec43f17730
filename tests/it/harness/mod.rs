//! Test harness: everything test files share, so that they import from
//! here (`crate::harness::...`) and never from each other.
//!
//! - `database`: the PostgreSQL server, a fresh database per test, teardown;
//! - `process`: the `tally` binary run as a real process;
//! - `wait`: polling for a condition, and locks held and waited for;
//! - `worker`: a running `tally run`, its endpoints and metrics;
//! - `refresh`: refreshing aggregates in-process, checking them from scratch;
//! - `partitions`: partition maintenance in-process and its reports;
//! - `fixtures`: the rows and files tests start from;
//! - `workload`: seeded random write workloads;
//! - here: a config from TOML, external tools, the repository's files.

mod database;
mod fixtures;
mod partitions;
mod process;
mod refresh;
mod wait;
mod worker;
mod workload;

use std::path::Path;
use std::sync::Arc;

use tally::config::Config;

pub use database::{TestDb, count, server_url};
pub use fixtures::{conversion, create_months, generated, index_state, insert_sample_events, lead};
pub use partitions::{day, done, maintain, month, partition_names};
pub use process::{Finished, Running, TallyCommand, tally};
pub use refresh::{assert_matches_scratch, assert_rollups_match_scratch, features, refresh_all, refresher, scratch};
pub use wait::{Session, backend_pid, is_lock_timeout, wait_until};
pub use worker::{
    FAST, free_addr, http_get, metric, metric_of, metrics, ready, start_worker, wait_for_metric, wait_for_metric_within,
};
pub use workload::Workload;

/// A validated config from TOML text.
pub fn config(toml: &str) -> Arc<Config> {
    Arc::new(Config::from_toml(toml, Path::new("test.toml")).expect("test config is valid"))
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
