//! `use_aggregate` on real plans: an aggregate is suggested only for the
//! queries it answers, and where it is, reading it gives the same rows.

use chrono::NaiveDate;
use sqlx::PgPool;
use tally::doctor::Kind;

use super::{expect, explain, find};
use crate::harness::{TestDb, config, create_months, refresh_all};

/// 30,000 events from 2026-09-01, one every 4 minutes: three event names,
/// 500 users, three sources, two campaigns, a page in `properties`.
async fn events(db: &TestDb) {
    create_months(&db.pool).await;
    sqlx::query(
        "INSERT INTO marketing.events (event, user_id, session_id, utm_source, utm_campaign, properties, occurred_at)
         SELECT (ARRAY['page_view', 'signup', 'purchase'])[1 + g % 3], 'u' || (g % 500), 's' || (g / 5),
                (ARRAY['google', 'newsletter', 'linkedin'])[1 + g % 3], (ARRAY['spring', 'autumn'])[1 + g % 2],
                jsonb_build_object('url', '/p' || (g % 11)), '2026-09-01'::timestamptz + g * interval '4 minutes'
         FROM generate_series(1, 30000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE marketing.events").execute(&db.pool).await.unwrap();
    refresh_all(&db.pool, &config("")).await;
}

async fn rows(pool: &PgPool, sql: &'static str) -> Vec<(NaiveDate, String, i64)> {
    sqlx::query_as(sql).fetch_all(pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

#[tokio::test]
async fn an_aggregate_is_suggested_only_for_the_queries_it_answers() {
    let db = TestDb::migrated().await;
    events(&db).await;
    for query in [
        // No aggregate keeps users or properties.
        "SELECT count(*) FROM marketing.events WHERE user_id = 'u1'",
        "SELECT event, count(*) FROM marketing.events WHERE user_id = 'u1' GROUP BY event",
        "SELECT count(*) FROM marketing.events WHERE properties @> '{\"url\": \"/p3\"}'",
        // Daily visitors counted once per day: a week's distinct users are not their sum.
        "SELECT count(DISTINCT user_id) FROM marketing.events \
         WHERE occurred_at >= '2026-10-01' AND occurred_at < '2026-10-08'",
        // Grouped by user: no aggregate has one row per user.
        "SELECT user_id, count(*) FROM marketing.events WHERE occurred_at >= '2026-10-01' GROUP BY user_id",
    ] {
        let report = explain(&db.pool, query, &[]).await;
        assert!(find(&report, Kind::UseAggregate).is_none(), "{query}: {:#?}", report.findings);
    }

    // A per-day count by event: daily_event_counts, with the same numbers.
    let by_event = "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, event, count(*) FROM marketing.events \
                    WHERE occurred_at >= '2026-10-01' AND occurred_at < '2026-10-08' GROUP BY 1, 2 ORDER BY 1, 2";
    let finding = expect(&explain(&db.pool, by_event, &[]).await, Kind::UseAggregate);
    assert!(finding.fix.starts_with("read reporting.daily_event_counts instead"), "{}", finding.fix);
    assert!(!finding.fix.contains("approximately"), "{}", finding.fix);
    let rollup = "SELECT day, event, sum(events)::int8 FROM reporting.daily_event_counts \
                  WHERE day >= '2026-10-01' AND day < '2026-10-08' GROUP BY 1, 2 ORDER BY 1, 2";
    assert_eq!(rows(&db.pool, by_event).await, rows(&db.pool, rollup).await);
    assert_eq!(rows(&db.pool, rollup).await.len(), 7 * 3);

    // A per-day campaign breakdown of signups: daily_campaign_metrics, with the same numbers.
    let by_campaign = "SELECT occurred_at::date, utm_source || '/' || utm_campaign, count(*) FILTER (WHERE event = 'signup') \
                       FROM marketing.events WHERE occurred_at >= '2026-10-01' AND occurred_at < '2026-10-08' \
                       GROUP BY occurred_at::date, utm_source, utm_campaign ORDER BY 1, 2";
    let finding = expect(&explain(&db.pool, by_campaign, &[]).await, Kind::UseAggregate);
    assert!(finding.fix.starts_with("read reporting.daily_campaign_metrics instead"), "{}", finding.fix);
    assert!(finding.fix.contains("sum(signups) for count(*) FILTER (WHERE event = 'signup')"), "{}", finding.fix);
    let rollup = "SELECT day, utm_source || '/' || utm_campaign, sum(signups)::int8 FROM reporting.daily_campaign_metrics \
                  WHERE day >= '2026-10-01' AND day < '2026-10-08' GROUP BY day, utm_source, utm_campaign ORDER BY 1, 2";
    assert_eq!(rows(&db.pool, by_campaign).await, rows(&db.pool, rollup).await);
}
