//! The `reporting.campaign_performance` view by hand (spend joined, no
//! division by zero) and its place in the dependency order; and the lead
//! funnel, by hand, in UTC and New York.

use sqlx::PgPool;

use crate::harness::{TestDb, config, conversion, lead, refresh_all, tally};

#[derive(sqlx::FromRow)]
struct Performance {
    day: String,
    utm_source: String,
    utm_campaign: String,
    spend: String,
    impressions: i64,
    clicks: i64,
    visitors: i64,
    signups: i64,
    purchases: i64,
    conversions: String,
    revenue: String,
    cpa: Option<String>,
    roas: Option<String>,
    ctr: Option<String>,
}

#[tokio::test]
async fn the_lead_funnel_by_hand_in_utc_and_new_york() {
    let db = TestDb::migrated().await;
    sqlx::query(
        "INSERT INTO marketing.leads (email, source, campaign, status, score, created_at) VALUES
         ('a@x', 'google', 'brand', 'new',       10, '2026-11-01 03:30+00'),
         ('b@x', 'google', 'brand', 'qualified', 20, '2026-11-01 04:30+00'),
         ('c@x', 'google', 'brand', 'converted', 25, '2026-11-02 04:30+00'),
         ('d@x', NULL,     NULL,    'lost',       0, '2026-11-02 05:30+00'),
         ('e@x', '',       'x',     'contacted',  7, '2026-11-02 06:00+00')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let funnel = |pool: PgPool| async move {
        sqlx::query_as::<_, (String, String, String, i64, i64, i64, String)>(
            "SELECT day::text, source, campaign, leads_created, qualified, converted, avg_score::text
             FROM reporting.daily_lead_funnel ORDER BY day, source, campaign",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let row = |d: &str, s: &str, c: &str, n: i64, q: i64, v: i64, avg: &str| {
        (d.to_string(), s.to_string(), c.to_string(), n, q, v, avg.to_string())
    };
    refresh_all(&db.pool, &config("")).await;
    assert_eq!(
        funnel(db.pool.clone()).await,
        [
            row("2026-11-01", "google", "brand", 2, 1, 0, "15.00"),
            row("2026-11-02", "(none)", "(none)", 1, 0, 0, "0.00"),
            row("2026-11-02", "(none)", "x", 1, 0, 0, "7.00"),
            row("2026-11-02", "google", "brand", 1, 1, 1, "25.00"),
        ]
    );
    refresh_all(&db.pool, &config("reporting_timezone = \"America/New_York\"")).await;
    assert_eq!(
        funnel(db.pool.clone()).await,
        [
            row("2026-10-31", "google", "brand", 1, 0, 0, "10.00"),
            row("2026-11-01", "google", "brand", 2, 2, 1, "22.50"),
            row("2026-11-02", "(none)", "(none)", 1, 0, 0, "0.00"),
            row("2026-11-02", "(none)", "x", 1, 0, 0, "7.00"),
        ]
    );
}

#[tokio::test]
async fn campaign_performance_joins_spend_and_never_divides_by_zero() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    sqlx::query(
        "INSERT INTO marketing.events (user_id, session_id, event, utm_source, utm_medium, utm_campaign, occurred_at) VALUES
         ('u1', 's1', 'page_view', 'google', 'cpc',     'brand', '2026-11-20 09:00+00'),
         ('u1', 's1', 'signup',    'google', 'cpc',     'brand', '2026-11-20 09:05+00'),
         ('u2', 's2', 'purchase',  'google', 'display', 'brand', '2026-11-20 10:00+00'),
         ('u3', 's3', 'page_view', NULL,     NULL,      NULL,    '2026-11-22 10:00+00')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend, impressions, clicks) VALUES
         ('2026-11-20', 'google', 'brand', 100.00, 1000, 50),
         ('2026-11-21', 'facebook', 'spring', 40.00, 0, 0)",
    )
    .execute(pool)
    .await
    .unwrap();
    let l = lead(pool, "u1@example.com", Some("u1"), Some("google"), Some("brand")).await;
    conversion(pool, &l, "signup", "0", "2026-11-20 09:05+00").await;
    conversion(pool, &l, "purchase", "250.00", "2026-11-20 10:00+00").await;
    refresh_all(pool, &config("")).await;

    let rows: Vec<Performance> = sqlx::query_as(
        "SELECT day::text, utm_source, utm_campaign, spend::text, impressions, clicks, visitors, signups, purchases,
                trim_scale(conversions)::text AS conversions, trim_scale(revenue)::text AS revenue,
                cpa::text, roas::text, ctr::text
         FROM reporting.campaign_performance ORDER BY day, utm_source",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let numbers = |v: [i64; 5], conversions: &str, revenue: &str, ratios: [Option<&str>; 3]| {
        (v, conversions.to_string(), revenue.to_string(), ratios.map(|r| r.map(str::to_string)))
    };
    let shown: Vec<(String, String, String, String, _)> = rows
        .into_iter()
        .map(|r| {
            (
                r.day,
                r.utm_source,
                r.utm_campaign,
                r.spend,
                (
                    [r.impressions, r.clicks, r.visitors, r.signups, r.purchases],
                    r.conversions,
                    r.revenue,
                    [r.cpa, r.roas, r.ctr],
                ),
            )
        })
        .collect();
    let s = |v: &str| v.to_string();
    assert_eq!(
        shown,
        [
            // two mediums of one campaign: visitors are summed over them
            (
                s("2026-11-20"),
                s("google"),
                s("brand"),
                s("100.00"),
                numbers([1000, 50, 2, 1, 1], "2", "250", [Some("50.00"), Some("2.5000"), Some("0.050000")])
            ),
            // spend without visits or conversions: no CPA (0 conversions), ROAS 0, no CTR (0 impressions)
            (
                s("2026-11-21"),
                s("facebook"),
                s("spring"),
                s("40.00"),
                numbers([0, 0, 0, 0, 0], "0", "0", [None, Some("0.0000"), None])
            ),
            // visits without spend: nothing to divide by
            (
                s("2026-11-22"),
                s("(none)"),
                s("(none)"),
                s("0.00"),
                numbers([0, 0, 1, 0, 0], "0", "0", [None, None, None])
            ),
        ]
    );
    // tally_reader reads it, although it cannot read marketing.campaign_spend itself.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *tx).await.unwrap();
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.campaign_performance").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn views_are_refreshed_after_what_they_read_and_status_shows_it() {
    let db = TestDb::migrated().await;
    let out = tally(&["refresh", "campaign_performance"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let order: Vec<&str> = out.stdout.lines().map(|l| l.split(':').next().unwrap_or_default()).collect();
    assert_eq!(
        order,
        ["daily_campaign_metrics", "daily_attribution", "daily_campaign_spend", "campaign_performance"],
        "{}",
        out.stdout
    );

    let status = tally(&["status"]).database(&db.url).output().await;
    assert!(
        status
            .stdout
            .contains("campaign_performance (view, current with daily_campaign_metrics, daily_attribution, daily_campaign_spend; ok)"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("reads:        daily_campaign_metrics, daily_attribution, daily_campaign_spend"),
        "{}",
        status.stdout
    );

    // Rebuilding an aggregate the view reads (another timezone) keeps the view.
    let rebuilt = tally(&["refresh", "daily_attribution"])
        .database(&db.url)
        .config_file("reporting_timezone = \"Europe/Berlin\"\n")
        .output()
        .await;
    assert_eq!(rebuilt.code, Some(0), "{rebuilt:?}");
    assert!(rebuilt.stdout.contains("daily_attribution: refreshed (rebuilt"), "{}", rebuilt.stdout);
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('reporting.campaign_performance') IS NOT NULL")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(exists);
}
