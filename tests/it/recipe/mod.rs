//! The recipe of docs/aggregates.md ("Adding an aggregate") followed for a
//! test-only aggregate: one `.sql` definition and one registry entry, from
//! which the invalidation triggers and the claims of incremental mode are
//! derived, with no other code. Its incremental refreshes rewrite only the
//! days its rule says changed, and always equal the definition.

use sqlx::{Acquire, PgPool};
use tally::aggregates::{Aggregate, DayIn, DirtyRule, Kind, Period, RefreshKind, incremental, triggers};
use tally::config::Config;
use tally::partitions::{ManagedTable, Month, create_months};

use crate::harness::{TestDb, config};

/// The registry entry: key, sources (through its rule) and how a source row
/// maps to days.
static DAILY_SIGNUPS: Aggregate = Aggregate {
    name: "daily_signups",
    kind: Kind::Rollup,
    description: "signups per day and source (test only)",
    sql: include_str!("daily_signups.sql"),
    key: &["day", "utm_source"],
    depends_on: &[],
    scope_column: "e.occurred_at",
    scope_is_date: false,
    dirtied_by: &[DirtyRule::DayOf { table: "marketing.events", column: "occurred_at", day: DayIn::ReportingZone }],
    live_key: None,
    period: Period::Day,
    needs_sketches: false,
    declared: None,
};

async fn refresh(pool: &PgPool, config: &Config) -> incremental::Outcome {
    let mut conn = pool.acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let outcome = incremental::refresh(&mut tx, &DAILY_SIGNUPS, config).await.unwrap();
    tx.commit().await.unwrap();
    outcome
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(pool).await.unwrap();
}

/// The stored rows and a from-scratch computation of the definition, as text.
async fn stored_and_scratch(pool: &PgPool, config: &Config) -> (Vec<String>, Vec<String>) {
    let rows = |sql: String| async move {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT x::text FROM ({sql}) AS x ORDER BY 1")))
            .fetch_all(pool)
            .await
            .unwrap()
    };
    let stored = rows(format!("SELECT * FROM {}", DAILY_SIGNUPS.qualified_name())).await;
    (stored, rows(DAILY_SIGNUPS.definition(config, crate::harness::features(pool).await)).await)
}

#[tokio::test]
async fn a_test_only_aggregate_built_from_its_registry_entry_stays_exact_incrementally() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let config = config("reporting_timezone = \"America/New_York\"");
    let months: Vec<Month> = (0..3).map(|n| Month::new(2026, 9).unwrap().plus(n)).collect();
    create_months(pool, &config, &ManagedTable::events(), &months).await.unwrap();
    execute(
        pool,
        "INSERT INTO marketing.events (event_id, event, occurred_at, utm_source) VALUES
         ('a', 'signup', '2026-10-01 12:00+00', 'google'), ('b', 'signup', '2026-10-01 13:00+00', 'google'),
         ('c', 'signup', '2026-10-02 03:00+00', NULL), ('d', 'page_view', '2026-10-02 12:00+00', 'google')",
    )
    .await;

    // The triggers come from the entry's rule alone.
    triggers::ensure_for(pool, &config, &[&DAILY_SIGNUPS]).await.unwrap();
    let installed: Vec<String> = sqlx::query_scalar(
        "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'marketing.events'::regclass AND tgname LIKE 'tally_%' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(installed.len(), 4, "insert, update, delete and truncate: {installed:?}");
    let partition_trigger: String = sqlx::query_scalar(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger
         WHERE tgrelid = 'marketing.events_p2026_09'::regclass AND tgname = 'tally_invalidate_truncate'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert!(
        partition_trigger.ends_with("('2026-09-01 00:00:00+00', '2026-10-01 00:00:00+00')"),
        "a partition's bounds, from the catalog: {partition_trigger}"
    );

    let built = refresh(pool, &config).await;
    assert_eq!(built.kind, RefreshKind::Built);
    let (stored, scratch) = stored_and_scratch(pool, &config).await;
    // 2026-10-02 03:00 UTC is still 2026-10-01 in New York.
    assert_eq!(stored, ["(2026-10-01,\"(none)\",1)", "(2026-10-01,google,2)"]);
    assert_eq!(stored, scratch);

    // A late signup, a signup moved to another day, a deletion: three days dirty.
    execute(
        pool,
        "INSERT INTO marketing.events (event_id, event, occurred_at, utm_source)
             VALUES ('e', 'signup', '2026-09-15 12:00+00', 'bing');
         UPDATE marketing.events SET occurred_at = '2026-10-05 12:00+00' WHERE event_id = 'b';
         DELETE FROM marketing.events WHERE event_id = 'c'",
    )
    .await;
    let marks: i64 = sqlx::query_scalar("SELECT count(*) FROM tally.invalidations WHERE aggregate = 'daily_signups'")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(marks >= 3, "each statement left its marks: {marks}");
    let outcome = refresh(pool, &config).await;
    assert_eq!((outcome.kind, outcome.days), (RefreshKind::Incremental, Some(3)), "2026-09-15, 10-01 and 10-05 only");
    let (stored, scratch) = stored_and_scratch(pool, &config).await;
    assert_eq!(stored, ["(2026-09-15,bing,1)", "(2026-10-01,google,1)", "(2026-10-05,google,1)"]);
    assert_eq!(stored, scratch);

    // TRUNCATE of one month's partition dirties that month, through the
    // partition trigger whose bounds come from the catalog.
    execute(pool, "TRUNCATE marketing.events_p2026_09").await;
    let outcome = refresh(pool, &config).await;
    assert_eq!(outcome.kind, RefreshKind::Incremental);
    // 2026-09-01 00:00 UTC .. 2026-10-01 00:00 UTC is 2026-08-31 .. 2026-09-30 in New York.
    assert_eq!(outcome.days, Some(31), "the month's days");
    let (stored, scratch) = stored_and_scratch(pool, &config).await;
    assert_eq!(stored, ["(2026-10-01,google,1)", "(2026-10-05,google,1)"]);
    assert_eq!(stored, scratch);
}
