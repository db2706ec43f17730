//! The two daily aggregates hold exactly the numbers SPEC §4 defines, in
//! the reporting timezone, and are refreshed CONCURRENTLY after their build.

use sqlx::PgPool;
use tally::aggregates::{self, RefreshKind};
use tally::refresh::RefreshOutcome;

use crate::harness::{TestDb, config, insert_sample_events, refresher};

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct CampaignRow {
    day: String,
    utm_source: String,
    utm_medium: String,
    utm_campaign: String,
    events: i64,
    page_views: i64,
    visitors: i64,
    sessions: i64,
    signups: i64,
    purchases: i64,
    revenue: String,
}

async fn campaign_rows(pool: &PgPool) -> Vec<CampaignRow> {
    sqlx::query_as(
        "SELECT day::text, utm_source, utm_medium, utm_campaign, events, page_views, visitors, sessions,
                signups, purchases, revenue::text
         FROM reporting.daily_campaign_metrics ORDER BY day, utm_source",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn row(day: &str, source: &str, medium: &str, campaign: &str, counts: [i64; 6], revenue: &str) -> CampaignRow {
    CampaignRow {
        day: day.into(),
        utm_source: source.into(),
        utm_medium: medium.into(),
        utm_campaign: campaign.into(),
        events: counts[0],
        page_views: counts[1],
        visitors: counts[2],
        sessions: counts[3],
        signups: counts[4],
        purchases: counts[5],
        revenue: revenue.into(),
    }
}

#[tokio::test]
async fn daily_campaign_metrics_match_the_spec_by_hand() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let report =
        refresher(&db.pool, config("")).refresh(aggregates::find("daily_campaign_metrics").unwrap()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Success, "{:?}", report.error);
    assert_eq!(report.kind, Some(RefreshKind::Built));
    assert_eq!(report.rows, Some(3));
    assert_eq!(
        campaign_rows(&db.pool).await,
        [
            // NULL and empty UTM values group under '(none)'; a NULL user is no visitor.
            row("2026-11-20", "(none)", "(none)", "(none)", [3, 3, 2, 2, 0, 0], "0"),
            // Only the JSON number counts as revenue: the string, the object,
            // the null and the missing value count as 0.
            row("2026-11-20", "google", "cpc", "brand", [8, 2, 4, 4, 1, 5], "49.90"),
            row("2026-11-21", "google", "cpc", "brand", [1, 1, 1, 1, 0, 0], "0"),
        ]
    );
}

#[tokio::test]
async fn daily_event_counts_match_the_spec_by_hand() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let report =
        refresher(&db.pool, config("")).refresh(aggregates::find("daily_event_counts").unwrap()).await.unwrap();
    assert_eq!(report.outcome, RefreshOutcome::Success, "{:?}", report.error);
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT day::text, event, events, visitors FROM reporting.daily_event_counts ORDER BY day, event",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("2026-11-20".into(), "page_view".into(), 5, 3),
            ("2026-11-20".into(), "purchase".into(), 5, 3),
            ("2026-11-20".into(), "signup".into(), 1, 1),
            ("2026-11-21".into(), "page_view".into(), 1, 1),
        ]
    );
}

#[tokio::test]
async fn days_follow_the_reporting_timezone_across_midnight_and_dst() {
    let db = TestDb::migrated().await;
    // US daylight saving time ends on 2026-11-01 at 06:00 UTC (02:00 EDT).
    sqlx::query(
        "INSERT INTO marketing.events (user_id, event, occurred_at) VALUES
         ('a', 'page_view', '2026-11-01 03:30+00'),  -- 23:30 EDT, Oct 31
         ('b', 'page_view', '2026-11-01 04:30+00'),  -- 00:30 EDT, Nov 1
         ('c', 'page_view', '2026-11-02 04:30+00'),  -- 23:30 EST, Nov 1
         ('d', 'page_view', '2026-11-02 05:30+00')   -- 00:30 EST, Nov 2",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let counts = |pool: PgPool| async move {
        sqlx::query_as::<_, (String, i64)>("SELECT day::text, events FROM reporting.daily_event_counts ORDER BY day")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let aggregate = aggregates::find("daily_event_counts").unwrap();
    let utc = refresher(&db.pool, config("")).refresh(aggregate).await.unwrap();
    assert_eq!(utc.outcome, RefreshOutcome::Success, "{:?}", utc.error);
    assert_eq!(counts(db.pool.clone()).await, [("2026-11-01".into(), 2), ("2026-11-02".into(), 2)]);

    // Changing the timezone rebuilds the view with the new definition.
    let new_york =
        refresher(&db.pool, config("reporting_timezone = \"America/New_York\"")).refresh(aggregate).await.unwrap();
    assert_eq!(new_york.outcome, RefreshOutcome::Success, "{:?}", new_york.error);
    assert_eq!(new_york.kind, Some(RefreshKind::Rebuilt));
    assert_eq!(
        counts(db.pool.clone()).await,
        [("2026-10-31".into(), 1), ("2026-11-01".into(), 2), ("2026-11-02".into(), 1)]
    );
    let index: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE indexname = 'daily_event_counts_key' AND indexdef LIKE '%UNIQUE%'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(index, 1, "the swapped-in view keeps its unique key index under the usual name");
}

#[tokio::test]
async fn later_refreshes_are_concurrent_and_never_block_readers() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let config = config("[database]\nlock_timeout = \"1s\"\n[refresh]\nmax_attempts = 1\n");
    let refresher = refresher(&db.pool, config);
    let aggregate = aggregates::find("daily_campaign_metrics").unwrap();
    assert_eq!(refresher.refresh(aggregate).await.unwrap().kind, Some(RefreshKind::Built));

    // A dashboard reading the view in a long transaction.
    let reader_pool = db.another_pool().await;
    let mut reader = reader_pool.begin().await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT sum(events)::bigint FROM reporting.daily_campaign_metrics")
        .fetch_one(&mut *reader)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO marketing.events (event, utm_source, occurred_at) VALUES ('page_view', 'bing', '2026-11-22')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let report = refresher.refresh(aggregate).await.unwrap();
    assert_eq!(
        report.outcome,
        RefreshOutcome::Success,
        "a plain REFRESH would have timed out on the reader's lock: {:?}",
        report.error
    );
    assert_eq!(report.kind, Some(RefreshKind::Refreshed));
    assert_eq!(report.rows, Some(4));
    reader.rollback().await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT sum(events)::bigint FROM reporting.daily_campaign_metrics")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(after, before + 1);
    let runs: Vec<(String, Option<i64>, bool)> = sqlx::query_as(
        "SELECT outcome, rows, finished_at >= started_at FROM tally.refresh_runs
         WHERE aggregate = 'daily_campaign_metrics' ORDER BY id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(runs, [("success".into(), Some(3), true), ("success".into(), Some(4), true)]);
}

#[tokio::test]
async fn a_broken_aggregate_fails_with_its_name_and_the_others_go_on() {
    let db = TestDb::migrated().await;
    sqlx::query("CREATE TABLE reporting.daily_event_counts (day date)").execute(&db.pool).await.unwrap();
    let refresher = refresher(&db.pool, config(""));
    let broken = refresher.refresh(aggregates::find("daily_event_counts").unwrap()).await.unwrap();
    assert_eq!(broken.outcome, RefreshOutcome::Failure);
    let error = broken.error.unwrap();
    assert!(
        error.contains("reporting.daily_event_counts exists but is not what tally builds (relkind `r`)"),
        "{error}"
    );
    assert_eq!(broken.attempts, 1, "a permanent error is not retried");
    let fine = refresher.refresh(aggregates::find("daily_campaign_metrics").unwrap()).await.unwrap();
    assert_eq!(fine.outcome, RefreshOutcome::Success);
    let recorded: (String, String) =
        sqlx::query_as("SELECT outcome, error FROM tally.refresh_runs WHERE aggregate = 'daily_event_counts'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(recorded.0, "failure");
    assert!(recorded.1.contains("drop or rename it"));
}

#[tokio::test]
async fn text_columns_keep_the_database_collation_though_grouping_compares_bytes() {
    // Grouping and distinct counts use COLLATE "C" (cheaper, the same groups);
    // what readers sort and compare keeps the database's collation.
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let names = ["daily_campaign_metrics", "daily_event_counts"];
    for (mode, text_columns) in [("concurrently", 4), ("incremental", 8)] {
        let toml: String = names.iter().map(|name| format!("[aggregates.{name}]\nmode = \"{mode}\"\n")).collect();
        let refresher = refresher(&db.pool, config(&toml));
        for name in names {
            let report = refresher.refresh(aggregates::find(name).unwrap()).await.unwrap();
            assert_eq!(report.outcome, RefreshOutcome::Success, "{mode} {name}: {:?}", report.error);
        }
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.relname::text, a.attname::text, coalesce(co.collname::text, '')
             FROM pg_attribute AS a
             JOIN pg_class AS c ON c.oid = a.attrelid
             LEFT JOIN pg_collation AS co ON co.oid = a.attcollation
             WHERE c.relnamespace = 'reporting'::regnamespace AND c.relkind IN ('r', 'm', 'v')
               AND (c.relname LIKE 'daily_campaign_metrics%' OR c.relname LIKE 'daily_event_counts%')
               AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'text'::regtype
             ORDER BY 1, 2",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        // Three UTM columns and `event`, in each table and, incremental, each live view.
        assert_eq!(columns.len(), text_columns, "{mode}: {columns:?}");
        assert!(columns.iter().all(|(_, _, collation)| collation == "default"), "{mode}: {columns:?}");
        assert_eq!(campaign_rows(&db.pool).await.len(), 3, "{mode}");
    }
}
