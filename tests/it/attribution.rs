//! Three-model attribution by hand, with the edge cases SPEC §4 spells out.

use sqlx::PgPool;

use crate::harness::{TestDb, config, conversion, lead, refresh_all};

/// One touch (an event with UTM values) of `user` at `at`.
async fn touch(pool: &PgPool, user: &str, source: Option<&str>, campaign: Option<&str>, at: &str) {
    sqlx::query("INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES ($1, 'page_view', $2, $3, $4::timestamptz)")
        .bind(user)
        .bind(source)
        .bind(campaign)
        .bind(at)
        .execute(pool)
        .await
        .unwrap();
}

type Credit = (String, String, String, String, String, String);

async fn credits(pool: &PgPool) -> Vec<Credit> {
    sqlx::query_as(
        "SELECT day::text, model, utm_source, utm_campaign, trim_scale(round(conversions, 12))::text, trim_scale(round(revenue, 12))::text
         FROM reporting.daily_attribution ORDER BY day, model, utm_source, utm_campaign",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn c(day: &str, model: &str, source: &str, campaign: &str, conversions: &str, revenue: &str) -> Credit {
    (day.into(), model.into(), source.into(), campaign.into(), conversions.into(), revenue.into())
}

#[tokio::test]
async fn attribution_credits_each_model_by_hand() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let t = "2026-11-20 12:00+00";
    let l1 = lead(pool, "l1@example.com", Some("u1"), Some("newsletter"), Some("nov")).await;
    let l2 = lead(pool, "l2@example.com", Some("u2"), Some("google"), None).await;
    let l3 = lead(pool, "l3@example.com", None, Some("trade_show"), Some("expo")).await; // no user_id
    let l4 = lead(pool, "l4@example.com", Some("u4"), None, None).await; // no touches at all
    conversion(pool, &l1, "purchase", "100.00", t).await;
    conversion(pool, &l2, "signup", "0", "2026-11-21 08:00+00").await;
    conversion(pool, &l3, "purchase", "50.00", t).await;
    conversion(pool, &l4, "purchase", "30.00", t).await;

    touch(pool, "u1", Some("google"), Some("brand"), "2026-11-10 12:00+00").await;
    touch(pool, "u1", Some("bing"), Some("generic"), "2026-11-20 11:00+00").await; // same instant as the next,
    touch(pool, "u1", Some("tiktok"), Some("collab"), "2026-11-20 11:00+00").await; // which has the higher id
    touch(pool, "u1", Some("facebook"), Some("spring"), "2026-10-21 12:00+00").await; // exactly 30 days before: out
    touch(pool, "u1", Some("linkedin"), None, "2026-10-21 12:00:01+00").await; // just inside the window
    touch(pool, "u1", Some("google"), Some("brand"), "2026-11-20 12:01+00").await; // after the conversion: out
    touch(pool, "u1", None, Some("x"), "2026-11-20 10:00+00").await; // no utm_source: not a touch
    touch(pool, "u1", Some(""), Some("y"), "2026-11-20 09:00+00").await; // empty utm_source: not a touch
    touch(pool, "u2", Some("linkedin"), Some("webinar"), "2026-11-21 08:00+00").await; // at the conversion instant: in

    refresh_all(pool, &config("")).await;
    assert_eq!(
        credits(pool).await,
        [
            c("2026-11-20", "first_touch", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "first_touch", "newsletter", "nov", "1", "100"),
            c("2026-11-20", "first_touch", "trade_show", "expo", "1", "50"),
            c("2026-11-20", "last_touch", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "last_touch", "tiktok", "collab", "1", "100"),
            c("2026-11-20", "last_touch", "trade_show", "expo", "1", "50"),
            c("2026-11-20", "linear", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "linear", "bing", "generic", "0.25", "25"),
            c("2026-11-20", "linear", "google", "brand", "0.25", "25"),
            c("2026-11-20", "linear", "linkedin", "(none)", "0.25", "25"),
            c("2026-11-20", "linear", "tiktok", "collab", "0.25", "25"),
            c("2026-11-20", "linear", "trade_show", "expo", "1", "50"),
            c("2026-11-21", "first_touch", "google", "(none)", "1", "0"),
            c("2026-11-21", "last_touch", "linkedin", "webinar", "1", "0"),
            c("2026-11-21", "linear", "linkedin", "webinar", "1", "0"),
        ]
    );

    // A lead with conversions cannot be deleted (ON DELETE RESTRICT): revenue
    // never disappears from attribution behind anyone's back.
    let refused =
        sqlx::query("DELETE FROM marketing.leads WHERE id = $1::uuid").bind(&l1).execute(pool).await.unwrap_err();
    assert!(refused.to_string().contains("violates foreign key constraint"), "{refused}");

    // A shorter lookback drops the older touches.
    refresh_all(pool, &config("attribution_lookback_days = 7")).await;
    let linear: Vec<Credit> =
        credits(pool).await.into_iter().filter(|r| r.1 == "linear" && r.0 == "2026-11-20").collect();
    assert_eq!(
        linear,
        [
            c("2026-11-20", "linear", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "linear", "bing", "generic", "0.5", "50"),
            c("2026-11-20", "linear", "tiktok", "collab", "0.5", "50"),
            c("2026-11-20", "linear", "trade_show", "expo", "1", "50"),
        ]
    );
}

#[tokio::test]
async fn linear_credit_of_three_touches_sums_to_one_conversion_and_its_revenue() {
    let db = TestDb::migrated().await;
    let l = lead(&db.pool, "l@example.com", Some("u"), Some("ads"), Some("a")).await;
    conversion(&db.pool, &l, "purchase", "10.00", "2026-11-20 12:00+00").await;
    for source in ["a", "b", "c"] {
        touch(&db.pool, "u", Some(source), Some("x"), "2026-11-19 12:00+00").await;
    }
    refresh_all(&db.pool, &config("")).await;
    let (conversions, revenue): (String, String) = sqlx::query_as(
        "SELECT trim_scale(round(sum(conversions), 12))::text, trim_scale(round(sum(revenue), 12))::text
         FROM reporting.daily_attribution WHERE model = 'linear'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((conversions.as_str(), revenue.as_str()), ("1", "10"));
}

#[tokio::test]
async fn attribution_days_follow_the_reporting_timezone() {
    let db = TestDb::migrated().await;
    let l = lead(&db.pool, "l@example.com", None, Some("ads"), Some("a")).await;
    conversion(&db.pool, &l, "signup", "0", "2026-11-01 03:30+00").await; // 23:30 EDT on Oct 31
    conversion(&db.pool, &l, "purchase", "5", "2026-11-02 04:30+00").await; // 23:30 EST on Nov 1 (after DST ends)
    refresh_all(&db.pool, &config("reporting_timezone = \"America/New_York\"")).await;
    let days: Vec<(String, String)> = sqlx::query_as(
        "SELECT day::text, trim_scale(revenue)::text FROM reporting.daily_attribution WHERE model = 'first_touch' ORDER BY day",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(days, [("2026-10-31".into(), "0".into()), ("2026-11-01".into(), "5".into())]);
}
