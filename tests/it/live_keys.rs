//! Keyed marks (docs/incremental.md): a statement of at most
//! `KEYED_MARK_ROWS` rows dirties its days only for the live key values of
//! its rows (the campaign, the event name), and a live read or a refresh
//! recomputes only those rows of the day; a batch, too many values, or any
//! other mark on the day makes the day whole again. Either way the live view
//! and the refreshed table equal a computation from scratch.

use sqlx::PgPool;
use tally::aggregates;

use crate::harness::{
    TestDb, assert_matches_scratch, config, conversion, count, create_months, features, lead, refresh_all,
};
use crate::live::{DAILY_INCREMENTAL, assert_live_is};

type Dirty = (Option<Vec<chrono::NaiveDate>>, Vec<chrono::NaiveDate>, Vec<String>);

async fn dirty(pool: &PgPool, aggregate: &str) -> Dirty {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT whole, keyed, keys FROM tally.{aggregate}_live_days()")))
        .fetch_one(pool)
        .await
        .unwrap()
}

fn days(list: &[&str]) -> Vec<chrono::NaiveDate> {
    list.iter().map(|d| d.parse().unwrap()).collect()
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(pool).await.unwrap();
}

/// One statement of `KEYED_MARK_ROWS` + 1 page views (a batch: whole days
/// and windows), a second apart from `start`, with `column` = `value`.
async fn insert_batch(pool: &PgPool, column: &str, value: &str, start: &str) {
    let rows = aggregates::triggers::KEYED_MARK_ROWS + 1;
    execute(
        pool,
        &format!(
            "INSERT INTO marketing.events (user_id, event, {column}, occurred_at)
             SELECT 'batch', 'page_view', {value}, timestamptz '{start}' + g * interval '1 second'
             FROM generate_series(1, {rows}) AS g"
        ),
    )
    .await;
}

/// Three days of five campaigns (2026-11-10 to 12, UTC), in one batch.
async fn seed(pool: &PgPool) {
    create_months(pool).await;
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, session_id, event, utm_source, utm_medium, utm_campaign, occurred_at)
         SELECT 'u' || g % 17, 's' || g % 23, (ARRAY['page_view', 'signup', 'purchase'])[1 + g % 3],
                (ARRAY['google', 'facebook', 'partner', NULL])[1 + g % 4], 'cpc',
                (ARRAY['brand', 'spring', 'solo', '', 'quiet'])[1 + g % 5],
                timestamptz '2026-11-10 00:30:00+00' + (g % 3) * interval '1 day' + g * interval '1 minute'
         FROM generate_series(1, 240) AS g",
    )
    .await;
}

#[tokio::test]
async fn small_statements_dirty_only_their_campaigns_and_batches_whole_days() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let config = config(DAILY_INCREMENTAL);
    let features = features(pool).await;
    refresh_all(pool, &config).await;
    assert_live_is(pool, &config, features, "table", "refreshed").await;
    // Small statements: a new group of a known campaign, a row moved to
    // another campaign, a campaign's rows deleted from one day, an empty campaign.
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES
                   ('new', 'signup', 'newsletter', 'brand', '2026-11-10 09:00+00'),
                   ('new', 'page_view', 'google', 'brand', '2026-11-10 09:01+00')",
    )
    .await;
    execute(
        pool,
        "UPDATE marketing.events SET utm_campaign = 'brand', utm_source = 'google'
                   WHERE id = (SELECT min(id) FROM marketing.events WHERE utm_campaign = 'spring'
                               AND occurred_at >= '2026-11-11' AND occurred_at < '2026-11-12')",
    )
    .await;
    execute(
        pool,
        "DELETE FROM marketing.events WHERE utm_campaign = 'solo'
                   AND occurred_at >= '2026-11-12' AND occurred_at < '2026-11-13'",
    )
    .await;
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_campaign, occurred_at)
                   VALUES ('x', 'purchase', '', '2026-11-12 23:59+00')",
    )
    .await;
    let (whole, keyed, keys) = dirty(pool, "daily_campaign_metrics").await;
    assert_eq!(whole, Some(vec![]), "no day is dirty whole");
    assert_eq!(keyed, days(&["2026-11-10", "2026-11-11", "2026-11-12"]));
    assert_eq!(keys, strings(&["(none)", "brand", "solo", "spring"]));
    assert_eq!(dirty(pool, "daily_event_counts").await.2, strings(&["page_view", "purchase", "signup"]));
    // Only the written campaigns' rows of those days are recomputed.
    let recomputed: Vec<(chrono::NaiveDate, String)> = sqlx::query_as(
        "SELECT DISTINCT r.day, r.utm_campaign FROM tally.daily_campaign_metrics_live_days() AS d,
                tally.daily_campaign_metrics_live_rows(d.whole, d.keyed, d.keys) AS r ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(recomputed.iter().all(|(_, campaign)| campaign != "quiet"), "{recomputed:?}");
    assert!(recomputed.contains(&(days(&["2026-11-10"])[0], "brand".to_string())), "{recomputed:?}");
    assert!(!recomputed.contains(&(days(&["2026-11-12"])[0], "solo".to_string())), "solo left that day");
    assert_live_is(pool, &config, features, "scratch", "after small statements").await;

    // A batch (more than KEYED_MARK_ROWS rows) dirties its day whole.
    insert_batch(pool, "utm_campaign", "'spring'", "2026-11-10 12:00+00").await;
    let (whole, keyed, _) = dirty(pool, "daily_campaign_metrics").await;
    assert_eq!((whole, keyed), (Some(days(&["2026-11-10"])), days(&["2026-11-11", "2026-11-12"])));
    assert_live_is(pool, &config, features, "scratch", "after a batch").await;

    // Key values are data, never SQL: a mark written by hand with a quote,
    // no value, a NULL value or a range of days makes whole days, and nothing else.
    execute(
        pool,
        "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day, keys) VALUES
                   ('daily_campaign_metrics', 'days', '2026-11-11', '2026-11-11', ARRAY['x'') OR true --', NULL]),
                   ('daily_campaign_metrics', 'days', '2026-11-13', '2026-11-14', ARRAY['brand']),
                   ('daily_campaign_metrics', 'days', '2026-11-09', '2026-11-09', '{}')",
    )
    .await;
    // A key array of two dimensions is refused (it could not be searched).
    let refused = sqlx::query(
        "INSERT INTO tally.invalidations (aggregate, kind, first_day, last_day, keys)
         VALUES ('daily_campaign_metrics', 'days', '2026-11-11', '2026-11-11', '{{a}}')",
    )
    .execute(pool)
    .await
    .expect_err("two dimensions");
    assert!(refused.to_string().contains("invalidations_keys_check"), "{refused}");
    let (whole, keyed, _) = dirty(pool, "daily_campaign_metrics").await;
    assert_eq!(
        whole,
        Some(days(&["2026-11-09", "2026-11-10", "2026-11-11", "2026-11-13", "2026-11-14"])),
        "no value, a NULL value or a range of days: whole days"
    );
    assert_eq!(keyed, days(&["2026-11-12"]));
    assert_live_is(pool, &config, features, "scratch", "after hand-written marks").await;

    // More than MAX_KEYS values waiting: the keyed days are recomputed whole.
    for n in 0..=aggregates::incremental::MAX_KEYS {
        execute(
            pool,
            &format!(
                "INSERT INTO marketing.events (user_id, event, utm_campaign, occurred_at)
                       VALUES ('c', 'page_view', 'campaign {n}', '2026-11-12 10:00+00')"
            ),
        )
        .await;
    }
    let (whole, keyed, keys) = dirty(pool, "daily_campaign_metrics").await;
    assert_eq!(whole.map(|w| w.len()), Some(6), "every dirty day whole");
    assert!(keyed.is_empty() && keys.is_empty());
    assert_live_is(pool, &config, features, "scratch", "with too many key values").await;

    // A refresh takes every mark, keyed or not.
    refresh_all(pool, &config).await;
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations").await, 0);
    assert_live_is(pool, &config, features, "table", "refreshed again").await;
}

#[tokio::test]
async fn a_refresh_of_keyed_marks_rewrites_only_the_written_campaigns() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let config = config(DAILY_INCREMENTAL);
    refresh_all(pool, &config).await;
    let versions = "SELECT day::text || ' ' || utm_campaign || ' ' || xmin::text FROM reporting.daily_campaign_metrics
                    WHERE utm_campaign IN ('quiet', 'solo') ORDER BY 1";
    let untouched: Vec<String> = sqlx::query_scalar(versions).fetch_all(pool).await.unwrap();
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at)
                   VALUES ('new', 'signup', 'newsletter', 'brand', '2026-11-10 09:00+00')",
    )
    .await;
    execute(
        pool,
        "UPDATE marketing.events SET utm_campaign = 'brand'
                   WHERE id = (SELECT min(id) FROM marketing.events WHERE utm_campaign = 'spring'
                               AND occurred_at >= '2026-11-11' AND occurred_at < '2026-11-12')",
    )
    .await;
    let refreshed = refresh_all(pool, &config).await;
    let campaigns = refreshed.iter().find(|(name, _, _)| name == "daily_campaign_metrics").unwrap();
    assert_eq!(campaigns.2, Some(2), "two days rewritten, for their written campaigns only");
    assert_matches_scratch(pool, &config, "after a refresh of keyed marks").await;
    let after: Vec<String> = sqlx::query_scalar(versions).fetch_all(pool).await.unwrap();
    assert_eq!(after, untouched, "the rows of the other campaigns were not rewritten");
    let brand: i64 = count(
        pool,
        "SELECT count(*) FROM reporting.daily_campaign_metrics
         WHERE utm_campaign = 'brand' AND day = '2026-11-10' AND utm_source = 'newsletter'",
    )
    .await;
    assert_eq!(brand, 1, "the new group is there");
}

/// A small statement's touches dirty the conversions of their own users in
/// the window, not every conversion in it; a batch's touches, every one.
#[tokio::test]
async fn late_touches_dirty_only_the_conversions_of_their_users() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    let config = config(&format!("attribution_lookback_days = 20\n{DAILY_INCREMENTAL}"));
    let features = features(pool).await;
    let ann = lead(pool, "ann@example.com", Some("ann"), Some("google"), Some("brand")).await;
    let bob = lead(pool, "bob@example.com", Some("bob"), Some("facebook"), Some("spring")).await;
    conversion(pool, &ann, "purchase", "100", "2026-11-10 12:00+00").await;
    conversion(pool, &bob, "purchase", "50", "2026-11-12 12:00+00").await;
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES
                   ('ann', 'page_view', 'google', 'brand', '2026-11-05 09:00+00'),
                   ('bob', 'page_view', 'facebook', 'spring', '2026-11-06 09:00+00')",
    )
    .await;
    refresh_all(pool, &config).await;
    let attribution_days = || async {
        let (whole, keyed, _) = dirty(pool, "daily_attribution").await;
        assert!(keyed.is_empty(), "attribution has no live key");
        whole.unwrap()
    };
    // A late touch of ann's: her conversion's day only, not bob's.
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at)
                   VALUES ('ann', 'page_view', 'newsletter', 'weekly', '2026-11-04 09:00+00')",
    )
    .await;
    assert_eq!(attribution_days().await, days(&["2026-11-10"]));
    // A touch of a visitor who is no lead dirties nothing.
    execute(
        pool,
        "INSERT INTO marketing.events (user_id, event, utm_source, occurred_at)
                   VALUES ('nobody', 'page_view', 'google', '2026-11-04 10:00+00')",
    )
    .await;
    assert_eq!(attribution_days().await, days(&["2026-11-10"]));
    // bob's touch moved out of his window (old and new rows): his day too.
    execute(pool, "UPDATE marketing.events SET occurred_at = '2026-10-01 09:00+00' WHERE user_id = 'bob'").await;
    assert_eq!(attribution_days().await, days(&["2026-11-10", "2026-11-12"]));
    assert_live_is(pool, &config, features, "scratch", "after small touches").await;
    refresh_all(pool, &config).await;
    assert_matches_scratch(pool, &config, "after a refresh of small touches").await;
    // A touch re-tagged to another campaign (only utm_campaign changes): its conversion is credited anew.
    execute(
        pool,
        "UPDATE marketing.events SET utm_campaign = 'retargeting' WHERE user_id = 'ann' AND utm_campaign = 'brand'",
    )
    .await;
    assert_eq!(attribution_days().await, days(&["2026-11-10"]));
    refresh_all(pool, &config).await;
    assert_matches_scratch(pool, &config, "after a touch changed campaign").await;
    // A batch of touches of someone else: every conversion in its windows.
    insert_batch(pool, "utm_source", "'google'", "2026-11-03 00:00+00").await;
    assert_eq!(attribution_days().await, days(&["2026-11-10", "2026-11-12"]));
    assert_live_is(pool, &config, features, "scratch", "after a batch of touches").await;
}
