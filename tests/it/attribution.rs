//! Five-model attribution by hand, with the edge cases SPEC §4 and §4.2
//! spell out, and each model's credit summing to one conversion.

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
            // Touches in order: linkedin, google, bing, tiktok (same instant as bing, higher id).
            c("2026-11-20", "position_based", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "position_based", "bing", "generic", "0.1", "10"),
            c("2026-11-20", "position_based", "google", "brand", "0.1", "10"),
            c("2026-11-20", "position_based", "linkedin", "(none)", "0.4", "40"),
            c("2026-11-20", "position_based", "tiktok", "collab", "0.4", "40"),
            c("2026-11-20", "position_based", "trade_show", "expo", "1", "50"),
            // Weights 2^(-a/7): google a = 10 days, bing and tiktok 1 hour, linkedin
            // 30 days less 1 s; each gets its weight over the sum (computed by hand).
            c("2026-11-20", "time_decay", "(none)", "(none)", "1", "30"),
            c("2026-11-20", "time_decay", "bing", "generic", "0.412453201312", "41.245320131189"),
            c("2026-11-20", "time_decay", "google", "brand", "0.153859271948", "15.38592719477"),
            c("2026-11-20", "time_decay", "linkedin", "(none)", "0.021234325429", "2.123432542852"),
            c("2026-11-20", "time_decay", "tiktok", "collab", "0.412453201312", "41.245320131189"),
            c("2026-11-20", "time_decay", "trade_show", "expo", "1", "50"),
            c("2026-11-21", "first_touch", "google", "(none)", "1", "0"),
            c("2026-11-21", "last_touch", "linkedin", "webinar", "1", "0"),
            c("2026-11-21", "linear", "linkedin", "webinar", "1", "0"),
            c("2026-11-21", "position_based", "linkedin", "webinar", "1", "0"),
            c("2026-11-21", "time_decay", "linkedin", "webinar", "1", "0"),
        ]
    );

    // A lead with conversions cannot be deleted (ON DELETE RESTRICT): revenue
    // never disappears from attribution behind anyone's back.
    let refused =
        sqlx::query("DELETE FROM marketing.leads WHERE id = $1::uuid").bind(&l1).execute(pool).await.unwrap_err();
    assert!(refused.to_string().contains("violates foreign key constraint"), "{refused}");

    // A shorter lookback drops the older touches; two touches at one
    // instant: half each, in every model that splits.
    refresh_all(pool, &config("attribution_lookback_days = 7")).await;
    let split: Vec<Credit> = credits(pool)
        .await
        .into_iter()
        .filter(|r| ["linear", "position_based", "time_decay"].contains(&r.1.as_str()) && r.0 == "2026-11-20")
        .collect();
    let mut expected = Vec::new();
    for model in ["linear", "position_based", "time_decay"] {
        expected.extend([
            c("2026-11-20", model, "(none)", "(none)", "1", "30"),
            c("2026-11-20", model, "bing", "generic", "0.5", "50"),
            c("2026-11-20", model, "tiktok", "collab", "0.5", "50"),
            c("2026-11-20", model, "trade_show", "expo", "1", "50"),
        ]);
    }
    assert_eq!(split, expected);

    // The half-life is a setting: with 1 day, google (10 days back) weighs 2^-10 of a fresh touch.
    refresh_all(pool, &config("attribution_half_life_days = 1")).await;
    let decay: Vec<Credit> = credits(pool)
        .await
        .into_iter()
        .filter(|r| r.1 == "time_decay" && r.0 == "2026-11-20" && r.2 == "google")
        .collect();
    let weights =
        [2f64.powf(-10.0), 2f64.powf(-1.0 / 24.0), 2f64.powf(-1.0 / 24.0), 2f64.powf(-(30.0 - 1.0 / 86_400.0))];
    let google = weights[0] / weights.iter().sum::<f64>();
    let [(.., conversions, revenue)] = decay.as_slice() else { panic!("one google time_decay row: {decay:?}") };
    let (conversions, revenue): (f64, f64) = (conversions.parse().unwrap(), revenue.parse().unwrap());
    assert!((conversions - google).abs() < 1e-11 && (revenue - 100.0 * google).abs() < 1e-9, "{decay:?} vs {google}");
}

#[tokio::test]
async fn every_model_credits_each_conversion_exactly_once() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    // 1 to 6 touches per conversion, some far back (2^(-30/1) underflows
    // nothing: weights are relative to the latest touch), some at one instant.
    for n in 0..7 {
        let user = format!("u{n}");
        let l = lead(pool, &format!("l{n}@example.com"), Some(&user), Some("ads"), Some("a")).await;
        conversion(pool, &l, "purchase", "7.00", "2026-11-20 12:00+00").await;
        for i in 0..n {
            let at = format!("2026-11-{:02} 12:00+00", 20 - (i * 29 / 6).min(29));
            touch(pool, &user, Some(&format!("s{i}")), Some("x"), &at).await;
        }
    }
    refresh_all(
        pool,
        &config(
            "attribution_half_life_days = 1
attribution_lookback_days = 30",
        ),
    )
    .await;
    let sums: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT model, trim_scale(round(sum(conversions), 12))::text, trim_scale(round(sum(revenue), 12))::text
         FROM reporting.daily_attribution GROUP BY model ORDER BY model",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let each = |model: &str| (model.to_string(), "7".to_string(), "49".to_string());
    assert_eq!(
        sums,
        ["first_touch", "last_touch", "linear", "position_based", "time_decay"].map(each),
        "7 conversions of 7.00, whatever the number of touches"
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

/// The worked example of docs/aggregates.md: one purchase of 100.00, three
/// touches 14, 7 and 0 days before it, each model's credits as printed there.
#[tokio::test]
async fn the_worked_example_of_the_docs_holds() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    let lead = lead(pool, "worked@example.com", Some("u1"), Some("newsletter"), Some("nov")).await;
    conversion(pool, &lead, "purchase", "100.00", "2026-11-20 12:00+00").await;
    touch(pool, "u1", Some("google"), Some("brand"), "2026-11-06 12:00+00").await;
    touch(pool, "u1", Some("facebook"), Some("spring"), "2026-11-13 12:00+00").await;
    touch(pool, "u1", Some("bing"), Some("generic"), "2026-11-20 12:00+00").await;
    refresh_all(pool, &config("")).await;
    let rounded: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT model, utm_source, round(revenue, 2)::text FROM reporting.daily_attribution ORDER BY model, utm_source",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let r = |model: &str, source: &str, revenue: &str| (model.to_string(), source.to_string(), revenue.to_string());
    assert_eq!(
        rounded,
        [
            r("first_touch", "newsletter", "100.00"),
            r("last_touch", "bing", "100.00"),
            r("linear", "bing", "33.33"),
            r("linear", "facebook", "33.33"),
            r("linear", "google", "33.33"),
            r("position_based", "bing", "40.00"),
            r("position_based", "facebook", "20.00"),
            r("position_based", "google", "40.00"),
            r("time_decay", "bing", "57.14"),
            r("time_decay", "facebook", "28.57"),
            r("time_decay", "google", "14.29"),
        ]
    );
}
