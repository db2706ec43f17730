//! Which aggregates a refresh covers, why one is not started, and how they
//! are labelled: the one
//! home of "a disabled aggregate is never refreshed" and of the mode label
//! metrics carry, so that the worker, `tally refresh`, `demo` and `bench`
//! cannot disagree.

use crate::aggregates::{self, Aggregate, Kind};
use crate::config::Config;

/// Why a refresh was not started. Nothing is recorded for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotStarted {
    /// Disabled in the configuration: never refreshed, whoever asks.
    #[error("disabled in the configuration (enabled = false)")]
    Disabled,
    /// It reads visitor sketches and the server has no hll extension
    /// (SPEC §4.1): it is not built until the extension is created.
    #[error(
        "it reads visitor sketches and the server has none; to build it, {}",
        crate::aggregates::features::SKETCHES_HINT
    )]
    NeedsSketches,
    /// Shutdown began while it waited for a `max_concurrent` permit.
    #[error("interrupted")]
    Interrupted,
}

/// Why a list of aggregate names cannot be refreshed.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    #[error("no aggregate named {}; known aggregates: {}", quoted(.unknown), .known.join(", "))]
    Unknown { unknown: Vec<String>, known: Vec<&'static str> },
    #[error(
        "{} disabled in the configuration (enabled = false); enable it to refresh it{}",
        .names.iter().map(|n| format!("`{n}` is")).collect::<Vec<_>>().join(", "),
        if *.through_views { " (the views named read it)" } else { "" }
    )]
    Disabled { names: Vec<&'static str>, through_views: bool },
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// Whether `aggregate` may be refreshed under `config`: a rollup when it is
/// enabled; a view always (it is recreated with what it reads).
pub fn is_enabled(config: &Config, aggregate: &Aggregate) -> bool {
    aggregate.kind == Kind::View || config.aggregate(aggregate.name).is_some_and(|s| s.enabled)
}

/// What a refresh of `names` covers, in dependency order: every enabled
/// aggregate when `names` is empty; else the named ones and what they read,
/// refused as a whole if one is unknown or disabled.
pub fn select(config: &Config, names: &[String]) -> Result<Vec<&'static Aggregate>, SelectError> {
    if names.is_empty() {
        return Ok(config.registry().iter().copied().filter(|a| is_enabled(config, a)).collect());
    }
    let selected = aggregates::in_dependency_order(config.registry(), names)
        .map_err(|unknown| SelectError::Unknown { unknown, known: config.names() })?;
    let disabled: Vec<&'static str> = selected.iter().filter(|a| !is_enabled(config, a)).map(|a| a.name).collect();
    if disabled.is_empty() {
        return Ok(selected);
    }
    let through_views = !disabled.iter().all(|d| names.iter().any(|n| n == d));
    Err(SelectError::Disabled { names: disabled, through_views })
}

/// The enabled rollups with their mode (`concurrently` or `incremental`):
/// the series the metrics start with, labelled as their refreshes will be.
pub fn metric_series(config: &Config) -> Vec<(&'static str, &'static str)> {
    config
        .registry()
        .iter()
        .filter_map(|a| config.aggregate(a.name).filter(|s| s.enabled).map(|s| (a.name, s.mode.as_str())))
        .collect()
}
