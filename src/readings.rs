//! What the worker reads back from the database into its metrics, besides
//! its own refreshes (which the refresher records itself): the incremental
//! backlog and the totals of every `tally ingest` run. At start-up and every
//! 10 s, from here only, so the series always come from one reading.

use sqlx::PgPool;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::refresh::Refresher;

/// Reads the backlog (when an aggregate is incremental) and the ingest totals.
pub async fn take(pool: &PgPool, config: &Config, refresher: &Refresher, metrics: &Metrics) {
    if crate::aggregates::triggers::any_incremental(config) {
        refresher.update_backlog().await;
    }
    match crate::ingest::totals(pool).await {
        Ok((loaded, duplicate, rejected)) => metrics.observe_ingest_totals(loaded, duplicate, rejected),
        Err(e) => tracing::warn!(error = %crate::db::describe(&e), "could not read ingest totals"),
    }
}
