//! Live reads (SPEC §4.3): `reporting.<name>_live` of each daily aggregate
//! in incremental mode returns, with no refresh, what a refresh at this
//! instant would write; after a refresh, the table. `tally_reader` reads it
//! without any right on `marketing`; it goes away with incremental mode.

use sqlx::PgPool;
use tally::aggregates::{self, Features, Kind};
use tally::config::Config;

use crate::harness::{TestDb, Workload, config, count, create_months, features, refresh_all, scratch};

pub(crate) const DAILY_INCREMENTAL: &str = "[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n\
     [aggregates.daily_event_counts]\nmode = \"incremental\"\n[aggregates.daily_lead_funnel]\nmode = \"incremental\"\n\
     [aggregates.daily_attribution]\nmode = \"incremental\"\n[aggregates.daily_campaign_spend]\nmode = \"incremental\"\n";

/// Rows of `left` not in `right` and the other way round, as text.
pub(crate) async fn differences(pool: &PgPool, left: &str, right: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT x::text FROM ((SELECT 'left' AS side, l::text FROM ({left}) AS l EXCEPT ALL SELECT 'left', r::text FROM ({right}) AS r)
          UNION ALL (SELECT 'right', r::text FROM ({right}) AS r EXCEPT ALL SELECT 'right', l::text FROM ({left}) AS l)) AS x LIMIT 10"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

fn daily_rollups() -> impl Iterator<Item = &'static aggregates::Aggregate> {
    aggregates::REGISTRY.iter().filter(|a| a.kind == Kind::Rollup && aggregates::live::has_live_view(a))
}

pub(crate) async fn assert_live_is(pool: &PgPool, config: &Config, features: Features, against: &str, context: &str) {
    for aggregate in daily_rollups() {
        let live = format!("SELECT * FROM {}", aggregates::live::qualified_name(aggregate));
        let expected = match against {
            "scratch" => scratch(aggregate, config, features),
            _ => format!("SELECT * FROM {}", aggregate.qualified_name()),
        };
        let diff = differences(pool, &live, &expected).await;
        assert!(diff.is_empty(), "{context}: {}_live differs from the {against}:\n{}", aggregate.name, diff.join("\n"));
    }
}

#[tokio::test]
async fn live_views_equal_a_full_computation_before_any_refresh_and_the_table_after() {
    for (seed, zone) in [(21, "UTC"), (22, "America/New_York")] {
        let db = TestDb::migrated().await;
        let pool = &db.pool;
        create_months(pool).await;
        let config =
            config(&format!("reporting_timezone = \"{zone}\"\nattribution_lookback_days = 20\n{DAILY_INCREMENTAL}"));
        let features = features(pool).await;
        let mut workload = Workload::new(seed);
        workload.apply(pool, 30, false).await;
        refresh_all(pool, &config).await;
        assert_live_is(pool, &config, features, "table", "right after a refresh").await;
        for round in 0..4 {
            // Inserts, late data, moves, deletes, lead and conversion changes, a partition TRUNCATE: no refresh.
            workload.apply(pool, 20, false).await;
            assert!(count(pool, "SELECT count(*) FROM tally.invalidations").await > 0);
            assert_live_is(pool, &config, features, "scratch", &format!("{zone}, round {round}, not refreshed")).await;
            refresh_all(pool, &config).await;
            assert_live_is(pool, &config, features, "table", &format!("{zone}, round {round}, refreshed")).await;
        }
        // A TRUNCATE marks everything: the live view recomputes it all.
        sqlx::raw_sql("TRUNCATE marketing.campaign_spend").execute(pool).await.unwrap();
        assert!(count(pool, "SELECT count(*) FROM tally.invalidations WHERE kind = 'all'").await > 0);
        assert_live_is(pool, &config, features, "scratch", &format!("{zone}, after a TRUNCATE")).await;
        // tally_reader reads a live view, and still nothing in marketing.
        let mut reader = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *reader).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reporting.daily_attribution_live")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        assert!(rows > 0);
        let refused = sqlx::query("SELECT count(*) FROM marketing.events").execute(&mut *reader).await;
        assert!(refused.is_err(), "tally_reader reads no marketing table");
        reader.rollback().await.unwrap();
        // Nor may it call the functions behind the views directly.
        let mut reader = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *reader).await.unwrap();
        let direct =
            sqlx::query("SELECT tally.daily_attribution_live_rows(NULL, NULL, NULL)").execute(&mut *reader).await;
        let message = direct.expect_err("no USAGE on schema tally").to_string();
        assert!(message.contains("permission denied for schema tally"), "{message}");
        reader.rollback().await.unwrap();
        let functions =
            "SELECT count(*) FROM pg_proc WHERE pronamespace = 'tally'::regnamespace AND proname LIKE '%\\_live\\_%'";
        assert_eq!(count(pool, functions).await, 2 * daily_rollups().count() as i64);
        // Back to concurrently mode: the live views go with the tables.
        refresh_all(pool, &crate::harness::config("")).await;
        assert_eq!(count(pool, "SELECT count(*) FROM pg_views WHERE viewname LIKE '%\\_live'").await, 0);
        assert_eq!(count(pool, functions).await, 0);
    }
}

/// The live views follow a definition change (a new lookback rebuilds the
/// attribution table and its view), and read the same under any reader's
/// date style and timezone (the dirty days become literal ranges).
#[tokio::test]
async fn live_views_follow_definition_changes_and_any_session_settings() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    let features = features(pool).await;
    let mut workload = Workload::new(23);
    workload.apply(pool, 30, false).await;
    let wide =
        config(&format!("reporting_timezone = \"Europe/Berlin\"\nattribution_lookback_days = 20\n{DAILY_INCREMENTAL}"));
    refresh_all(pool, &wide).await;
    let narrow =
        config(&format!("reporting_timezone = \"Europe/Berlin\"\nattribution_lookback_days = 3\n{DAILY_INCREMENTAL}"));
    refresh_all(pool, &narrow).await;
    assert_live_is(pool, &narrow, features, "table", "after the lookback changed").await;
    workload.apply(pool, 20, false).await;
    assert_live_is(pool, &narrow, features, "scratch", "new lookback, not refreshed").await;
    let aggregate = aggregates::find("daily_attribution").unwrap();
    let expected = scratch(aggregate, &narrow, features);
    let mut odd = pool.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL DateStyle = 'SQL, DMY'; SET LOCAL TimeZone = 'Pacific/Kiritimati'; SET LOCAL search_path = marketing")
        .execute(&mut *odd)
        .await
        .unwrap();
    let differing: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM ((SELECT l::text FROM reporting.daily_attribution_live AS l EXCEPT ALL SELECT r::text FROM ({expected}) AS r)
          UNION ALL (SELECT r::text FROM ({expected}) AS r EXCEPT ALL SELECT l::text FROM reporting.daily_attribution_live AS l)) AS x"
    )))
    .fetch_one(&mut *odd)
    .await
    .unwrap();
    odd.rollback().await.unwrap();
    assert_eq!(differing, 0, "the live view reads the same under another DateStyle, TimeZone and search_path");
}

/// The dashboard's *Daily metrics* toggle: the per-day panel on the live
/// view shows a signup no refresh has seen yet; on the stored table, not.
#[tokio::test]
async fn the_dashboard_toggle_reads_the_live_view() {
    use std::collections::BTreeMap;
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let options = tally::demo::GenerateOptions { events: 20_000, days: 20, ..tally::demo::GenerateOptions::default() };
    tally::demo::generate(pool, &config(""), &options).await.unwrap();
    let config = config("[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n");
    refresh_all(pool, &config).await;
    sqlx::query("INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES ('late', 'signup', 'google', 'brand_search', $1)")
        .bind(options.anchor - chrono::Duration::hours(1))
        .execute(pool)
        .await
        .unwrap();
    let (name, text) = tally::dashboards::DASHBOARDS[0];
    let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
    let panel = tally::dashboards::sql_queries(name, &dashboard)
        .into_iter()
        .find(|q| q.title == "Visitors, signups and purchases per day")
        .unwrap();
    let signups = |relation: &str| {
        let variables: BTreeMap<String, Vec<String>> = BTreeMap::from([
            ("metrics".to_string(), vec![relation.to_string()]),
            ("source".to_string(), vec!["google".to_string()]),
            ("campaign".to_string(), vec!["brand_search".to_string()]),
        ]);
        let sql = tally::dashboards::expand(
            &panel.sql,
            options.anchor - chrono::Duration::days(3),
            options.anchor,
            &variables,
        );
        async move {
            let rows: Vec<(f64, Option<i64>)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT \"time\"::float8, signups::bigint FROM ({sql}) AS p"
            )))
            .fetch_all(pool)
            .await
            .unwrap();
            rows.iter().map(|r| r.1.unwrap_or(0)).sum::<i64>()
        }
    };
    let (stored, live) = (signups("daily_campaign_metrics").await, signups("daily_campaign_metrics_live").await);
    assert_eq!(live, stored + 1, "the live view has the unrefreshed signup");
}
