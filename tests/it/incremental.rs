//! Incremental mode: only dirty days are rewritten, and the result always
//! equals a from-scratch computation of the definitions, row for row, under
//! hand-written cases, random workloads and concurrent writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use tally::aggregates::RefreshKind;

use crate::harness::{TestDb, Workload, assert_matches_scratch, config, count, create_months, refresh_all};

/// Every rollup of the registry in incremental mode: a new built-in joins
/// the differential tests by being in the registry.
fn all_incremental() -> String {
    tally::aggregates::REGISTRY
        .iter()
        .filter(|a| a.kind == tally::aggregates::Kind::Rollup)
        .map(|a| format!("[aggregates.{}]\nmode = \"incremental\"\n", a.name))
        .collect()
}

#[tokio::test]
async fn each_kind_of_change_rewrites_only_its_days_and_stays_exact() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    let config = config(&all_incremental());
    Workload::new(11).apply(pool, 40, false).await;
    let built = refresh_all(pool, &config).await;
    assert!(built.iter().all(|(_, kind, _)| *kind == RefreshKind::Built), "{built:?}");
    assert_matches_scratch(pool, &config, "after the build").await;
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations").await, 0);

    let steps: &[(&str, &str)] = &[
        (
            "an insert on one day",
            "INSERT INTO marketing.events (user_id, event, utm_source, occurred_at) VALUES ('u1', 'signup', 'google', '2026-11-20 10:00+00')",
        ),
        (
            "late data months old",
            "INSERT INTO marketing.events (user_id, event, utm_source, occurred_at) VALUES ('u2', 'purchase', 'google', '2026-06-03 10:00+00')",
        ),
        (
            "an update moving rows to another day and month",
            "UPDATE marketing.events SET occurred_at = occurred_at - interval '40 days' WHERE id IN (SELECT id FROM marketing.events ORDER BY id LIMIT 3)",
        ),
        (
            "a delete",
            "DELETE FROM marketing.events WHERE id IN (SELECT id FROM marketing.events ORDER BY id DESC LIMIT 2)",
        ),
        (
            "a lead's status and source",
            "UPDATE marketing.leads SET status = 'converted', source = 'partner' WHERE id IN (SELECT id FROM marketing.leads ORDER BY email LIMIT 2)",
        ),
        (
            "a conversion moved and one deleted",
            "UPDATE marketing.conversions SET occurred_at = occurred_at + interval '2 days' WHERE id IN (SELECT min(id) FROM marketing.conversions); DELETE FROM marketing.conversions WHERE id IN (SELECT max(id) FROM marketing.conversions)",
        ),
        (
            "a touch deleted",
            "DELETE FROM marketing.events WHERE utm_source = 'facebook' AND id IN (SELECT id FROM marketing.events WHERE utm_source = 'facebook' ORDER BY id LIMIT 2)",
        ),
        ("TRUNCATE of a partition", "TRUNCATE marketing.events_p2026_09"),
    ];
    for (what, sql) in steps {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(pool).await.unwrap();
        let kinds = refresh_all(pool, &config).await;
        assert!(kinds.iter().all(|(_, kind, _)| *kind == RefreshKind::Incremental), "{what}: {kinds:?}");
        assert_matches_scratch(pool, &config, what).await;
    }
    // One insert dirties one day of each events aggregate, and nothing of the lead funnel.
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2026-11-21 10:00+00')")
        .execute(pool)
        .await
        .unwrap();
    let kinds = refresh_all(pool, &config).await;
    let days = |name: &str| kinds.iter().find(|k| k.0 == name).unwrap().2;
    assert_eq!(days("daily_campaign_metrics"), Some(1));
    assert_eq!(days("daily_event_counts"), Some(1));
    assert_eq!(days("daily_lead_funnel"), Some(0));
    let recorded: i64 = count(pool, "SELECT max(days_refreshed)::bigint FROM tally.refresh_runs WHERE aggregate = 'daily_event_counts' AND id = (SELECT max(id) FROM tally.refresh_runs WHERE aggregate = 'daily_event_counts')").await;
    assert_eq!(recorded, 1, "days_refreshed is recorded in history");
}

#[tokio::test]
async fn random_workloads_match_a_full_computation_in_utc_and_new_york() {
    for (seed, zone) in [(1, "UTC"), (2, "America/New_York"), (3, "Asia/Kolkata")] {
        let db = TestDb::migrated().await;
        create_months(&db.pool).await;
        let config =
            config(&format!("reporting_timezone = \"{zone}\"\nattribution_lookback_days = 20\n{}", all_incremental()));
        let mut workload = Workload::new(seed);
        workload.apply(&db.pool, 30, false).await;
        refresh_all(&db.pool, &config).await;
        for round in 0..6 {
            workload.apply(&db.pool, 25, false).await;
            refresh_all(&db.pool, &config).await;
            assert_matches_scratch(&db.pool, &config, &format!("seed {seed}, {zone}, round {round}")).await;
        }
    }
}

#[tokio::test]
async fn writes_committed_during_refreshes_are_never_lost() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let config = config(&all_incremental());
    Workload::new(7).apply(&db.pool, 40, false).await;
    refresh_all(&db.pool, &config).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for seed in [100, 200, 300] {
        let (pool, stop) = (db.another_pool().await, stop.clone());
        writers.push(tokio::spawn(async move {
            let mut workload = Workload::new(seed);
            while !stop.load(Ordering::Relaxed) {
                workload.apply(&pool, 1, true).await;
            }
        }));
    }
    // At least 5 s and at least 3 refreshes, however slow the machine.
    let mut refreshes = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    while refreshes < 3 || tokio::time::Instant::now() < until {
        refresh_all(&db.pool, &config).await;
        refreshes += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    refresh_all(&db.pool, &config).await;
    assert_matches_scratch(&db.pool, &config, "after concurrent writers").await;
}

#[tokio::test]
async fn switching_modes_rebuilds_once_and_readers_never_see_a_gap() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    Workload::new(5).apply(&db.pool, 60, false).await;
    let concurrently = config("");
    refresh_all(&db.pool, &concurrently).await;
    let expected = count(&db.pool, "SELECT count(*) FROM reporting.daily_campaign_metrics").await;
    let weeks = count(&db.pool, "SELECT count(*) FROM reporting.weekly_campaign_metrics").await;
    assert!(expected > 0 && weeks > 0);

    // A dashboard polls the aggregate, and the weekly rollup over it, during both switches.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let (pool, stop) = (db.another_pool().await, stop.clone());
        async move {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics")
                    .fetch_one(&pool)
                    .await
                    .expect("the aggregate is always there");
                assert_eq!(rows, expected, "never empty, never partial");
                let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM reporting.weekly_campaign_metrics")
                    .fetch_one(&pool)
                    .await
                    .expect("the weekly rollup is always there, even while the daily one it reads is swapped");
                assert_eq!(rows, weeks, "never empty, never partial");
                reads += 1;
            }
            reads
        }
    });
    let incremental = config(&all_incremental());
    let switched = refresh_all(&db.pool, &incremental).await;
    // The daily rollup's swap dropped the weekly and monthly views over it and
    // built them again, as tables, in its own transaction.
    let coarser = |name: &str| name.starts_with("weekly") || name.starts_with("monthly");
    assert!(
        switched.iter().all(|(name, kind, days)| match coarser(name) {
            true => (*kind, *days) == (RefreshKind::Incremental, Some(0)),
            false => *kind == RefreshKind::Rebuilt,
        }),
        "{switched:?}"
    );
    let relkind: String = sqlx::query_scalar(
        "SELECT relkind::text FROM pg_class WHERE oid = 'reporting.daily_campaign_metrics'::regclass",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(relkind, "r");
    let again = refresh_all(&db.pool, &incremental).await;
    assert!(again.iter().all(|(_, kind, _)| *kind == RefreshKind::Incremental), "rebuilt once: {again:?}");
    let back = refresh_all(&db.pool, &concurrently).await;
    assert!(back.iter().all(|(_, kind, _)| *kind == RefreshKind::Rebuilt), "{back:?}");
    stop.store(true, Ordering::Relaxed);
    assert!(reader.await.unwrap() > 0);
    assert_matches_scratch(&db.pool, &concurrently, "back in concurrently mode").await;
    assert_eq!(
        count(&db.pool, "SELECT count(*) FROM pg_indexes WHERE indexname = 'daily_campaign_metrics_key'").await,
        1
    );
    // The view over the aggregates survived both swaps.
    assert!(count(&db.pool, "SELECT count(*) FROM reporting.campaign_performance").await > 0);
}

#[tokio::test]
async fn triggers_exist_only_while_an_aggregate_is_incremental() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let triggers = |pool: PgPool| async move {
        count(&pool, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'tally_invalidate_%'").await
    };
    refresh_all(&db.pool, &config(&all_incremental())).await;
    // 4 operations on each of 4 tables, plus TRUNCATE on each events partition (10 months and the default).
    assert_eq!(triggers(db.pool.clone()).await, 16 + 11);

    // Disabling one aggregate marks it stale; enabling it again rebuilds it.
    let attribution = "[aggregates.daily_attribution]\nmode = \"incremental\"\n";
    let disabled = config(&all_incremental().replace(attribution, &format!("{attribution}enabled = false\n")));
    tally::aggregates::triggers::ensure(&db.pool, &disabled).await.unwrap();
    sqlx::query("INSERT INTO marketing.conversions (lead_id, kind, occurred_at) SELECT id, 'signup', now() FROM marketing.leads LIMIT 1")
        .execute(&db.pool)
        .await
        .unwrap();
    let kinds = refresh_all(&db.pool, &config(&all_incremental())).await;
    assert_eq!(kinds.iter().find(|k| k.0 == "daily_attribution").unwrap().1, RefreshKind::Rebuilt);

    refresh_all(&db.pool, &config("")).await;
    tally::aggregates::triggers::ensure(&db.pool, &config("")).await.unwrap();
    assert_eq!(triggers(db.pool.clone()).await, 0, "no incremental aggregate, no trigger, no ingest overhead");
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', now())")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(count(&db.pool, "SELECT count(*) FROM tally.invalidations").await, 0);
}
