//! Refreshing aggregates in the test process (no worker), and checking
//! what they hold against their definitions computed from scratch.

use std::sync::Arc;

use sqlx::PgPool;
use tally::aggregates::{self, Kind, RefreshKind};
use tally::config::Config;
use tally::metrics::Metrics;
use tally::refresh::{NotStarted, RefreshOutcome, Refresher};
use tokio_util::sync::CancellationToken;

/// A refresher on `pool`, with metrics for every aggregate.
pub fn refresher(pool: &PgPool, config: Arc<Config>) -> Refresher {
    let names: Vec<(&str, &str)> = aggregates::REGISTRY.iter().map(|a| (a.name, "concurrently")).collect();
    Refresher::new(pool.clone(), config, Arc::new(Metrics::new(&names)), CancellationToken::new())
}

/// Refreshes every aggregate, rollups and views, in dependency order, and
/// checks each succeeded; returns the rollups' (name, kind, days refreshed).
pub async fn refresh_all(pool: &PgPool, config: &Arc<Config>) -> Vec<(String, RefreshKind, Option<i64>)> {
    let refresher = refresher(pool, config.clone());
    let mut kinds = Vec::new();
    for aggregate in aggregates::REGISTRY {
        let report = match refresher.refresh(aggregate).await {
            Ok(report) => report,
            // The coarser rollups, on a server without postgresql-hll.
            Err(NotStarted::NeedsSketches) => continue,
            Err(why) => panic!("{}: not started: {why}", aggregate.name),
        };
        assert_eq!(report.outcome, RefreshOutcome::Success, "{}: {:?}", aggregate.name, report.error);
        if aggregate.kind == Kind::Rollup {
            kinds.push((aggregate.name.to_string(), report.kind.unwrap(), report.days));
        }
    }
    kinds
}

/// What the test database offers the definitions (visitor sketches when the
/// server has postgresql-hll).
pub async fn features(pool: &PgPool) -> aggregates::Features {
    aggregates::Features::detect(&mut pool.acquire().await.unwrap()).await.unwrap()
}

/// Every rollup equals its definition computed from scratch, row for row.
pub async fn assert_matches_scratch(pool: &PgPool, config: &Config, context: &str) {
    let rollups: Vec<&str> = aggregates::REGISTRY.iter().filter(|a| a.kind == Kind::Rollup).map(|a| a.name).collect();
    assert_rollups_match_scratch(pool, config, &rollups, context).await;
}

/// The named rollups equal their definitions computed from scratch, row for
/// row: from the raw tables, a rollup of rollups too (SPEC §4.1: the weekly
/// rollup of the daily rollup of the events). Rollups the server cannot
/// build (no sketches) are skipped.
pub async fn assert_rollups_match_scratch(pool: &PgPool, config: &Config, names: &[&str], context: &str) {
    let features = features(pool).await;
    for aggregate in names.iter().map(|n| aggregates::find(n).expect("a known aggregate")) {
        if aggregate.needs_sketches && !features.sketches {
            continue;
        }
        let table = aggregate.qualified_name();
        let scratch = scratch(aggregate, config, features);
        // Rows compared as text: a visitor sketch (hll) has no equality for EXCEPT.
        let differences: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT x::text FROM (
                 (SELECT 'stored' AS side, t::text FROM {table} AS t EXCEPT ALL SELECT 'stored', s::text FROM ({scratch}) AS s)
                 UNION ALL
                 (SELECT 'scratch', s::text FROM ({scratch}) AS s EXCEPT ALL SELECT 'scratch', t::text FROM {table} AS t)) AS x
             LIMIT 10"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        assert!(
            differences.is_empty(),
            "{context}: {} differs from a full computation:\n{}",
            aggregate.name,
            differences.join("\n")
        );
    }
}

/// The aggregate's definition reading, instead of the rollups it depends on,
/// their own definitions (computed from the raw tables).
pub fn scratch(aggregate: &aggregates::Aggregate, config: &Config, features: aggregates::Features) -> String {
    let mut definition = aggregate.definition(config, features);
    for dependency in aggregate.depends_on.iter().map(|d| aggregates::find(d).unwrap()) {
        let read = format!("FROM reporting.{}", dependency.name);
        assert!(definition.contains(&read), "{} reads {}", aggregate.name, dependency.name);
        definition = definition.replace(&read, &format!("FROM ({}\n)", scratch(dependency, config, features)));
    }
    definition
}
