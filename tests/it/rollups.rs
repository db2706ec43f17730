//! The coarser rollups (SPEC §4.1): `weekly_campaign_metrics` and
//! `monthly_campaign_metrics`, built from `daily_campaign_metrics`, with
//! weeks from Monday and months in the reporting timezone, visitors counted
//! once per period from the unioned sketches, and in incremental mode only
//! the weeks and months of changed days rewritten.

use sqlx::PgPool;

use crate::harness::{TestDb, assert_matches_scratch, config, count, create_months, refresh_all, tally};

const NEW_YORK: &str = "reporting_timezone = \"America/New_York\"\n";

const INCREMENTAL: &str = "[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n\
                           [aggregates.weekly_campaign_metrics]\nmode = \"incremental\"\n\
                           [aggregates.monthly_campaign_metrics]\nmode = \"incremental\"\n";

/// google/brand/cpc visits around the ends of a week and of two months, in
/// New York: u3 on Saturday 2026-10-31 23:30; u1 on Sunday 2026-11-29 23:30
/// and Monday 2026-11-30 01:00; u2 on 2026-11-30 10:00; u1 signs up on
/// 2026-12-01 and u2 buys (40) on 2026-12-02.
async fn visits(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO marketing.events (user_id, event, properties, utm_source, utm_medium, utm_campaign, occurred_at) VALUES
         ('u3', 'page_view', '{}', 'google', 'cpc', 'brand', '2026-11-01 03:30+00'),
         ('u1', 'page_view', '{}', 'google', 'cpc', 'brand', '2026-11-30 04:30+00'),
         ('u1', 'page_view', '{}', 'google', 'cpc', 'brand', '2026-11-30 06:00+00'),
         ('u2', 'page_view', '{}', 'google', 'cpc', 'brand', '2026-11-30 15:00+00'),
         ('u1', 'signup',   '{}', 'google', 'cpc', 'brand', '2026-12-01 15:00+00'),
         ('u2', 'purchase', '{\"revenue\": 40}', 'google', 'cpc', 'brand', '2026-12-02 15:00+00')",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// (period, events, visitors, signups, purchases, revenue) of a rollup, in order.
async fn periods(pool: &PgPool, rollup: &str, period: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT concat_ws(' ', {period}, events, visitors, signups, purchases, revenue) FROM reporting.{rollup} ORDER BY 1"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn weeks_start_on_monday_and_months_on_the_first_in_the_reporting_timezone_in_both_modes() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    visits(pool).await;
    for toml in ["", INCREMENTAL] {
        let config = config(&format!("{NEW_YORK}{toml}"));
        refresh_all(pool, &config).await;
        assert_eq!(
            periods(pool, "weekly_campaign_metrics", "week").await,
            ["2026-10-26 1 1 0 0 0", "2026-11-23 1 1 0 0 0", "2026-11-30 4 2 1 1 40"],
            "{toml}: Sunday 23:30 in New York is the week before; u1 and u2 count once in their week"
        );
        assert_eq!(
            periods(pool, "monthly_campaign_metrics", "month").await,
            ["2026-10-01 1 1 0 0 0", "2026-11-01 3 2 0 0 0", "2026-12-01 2 2 1 1 40"],
            "{toml}: 23:30 on October 31st in New York is October"
        );
        let summed = "SELECT sum(visitors)::bigint FROM reporting.daily_campaign_metrics \
                      WHERE day BETWEEN '2026-11-01' AND '2026-11-30'";
        assert_eq!(count(pool, summed).await, 3, "the daily rollup would count u1 twice in November");
        assert_matches_scratch(pool, &config, toml).await;
    }
}

#[tokio::test]
async fn a_changed_day_rewrites_only_its_week_and_month() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    visits(pool).await;
    let config = config(&format!("{NEW_YORK}{INCREMENTAL}"));
    refresh_all(pool, &config).await;
    let rewritten = |kinds: &[(String, tally::aggregates::RefreshKind, Option<i64>)], name: &str| {
        kinds.iter().find(|k| k.0 == name).unwrap().2
    };

    // Late data months old: one day, one week, one month.
    sqlx::query(
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_medium, utm_campaign, occurred_at)
         VALUES ('u9', 'page_view', 'google', 'cpc', 'brand', '2026-06-03 15:00+00')",
    )
    .execute(pool)
    .await
    .unwrap();
    let kinds = refresh_all(pool, &config).await;
    assert_eq!(rewritten(&kinds, "daily_campaign_metrics"), Some(1));
    assert_eq!(rewritten(&kinds, "weekly_campaign_metrics"), Some(1));
    assert_eq!(rewritten(&kinds, "monthly_campaign_metrics"), Some(1));
    assert_matches_scratch(pool, &config, "after late data").await;

    // u3's visit moves from Saturday October 31st to Monday November 2nd:
    // two days, two weeks, two months.
    sqlx::query("UPDATE marketing.events SET occurred_at = '2026-11-02 15:00+00' WHERE user_id = 'u3'")
        .execute(pool)
        .await
        .unwrap();
    let kinds = refresh_all(pool, &config).await;
    assert_eq!(rewritten(&kinds, "daily_campaign_metrics"), Some(2));
    assert_eq!(rewritten(&kinds, "weekly_campaign_metrics"), Some(2));
    assert_eq!(rewritten(&kinds, "monthly_campaign_metrics"), Some(2));
    assert_matches_scratch(pool, &config, "after a visit moved across a month").await;
    assert_eq!(
        count(pool, "SELECT count(*) FROM reporting.monthly_campaign_metrics WHERE month = '2026-10-01'").await,
        0
    );
    let history = "SELECT days_refreshed::bigint FROM tally.refresh_runs \
                   WHERE aggregate = 'monthly_campaign_metrics' ORDER BY id DESC LIMIT 1";
    assert_eq!(count(pool, history).await, 2, "history records the months rewritten");

    // With the daily rollup in concurrently mode, nothing says which days it
    // changed: the incremental weekly rollup recomputes everything, exactly.
    let mixed =
        crate::harness::config(&format!("{NEW_YORK}[aggregates.weekly_campaign_metrics]\nmode = \"incremental\"\n"));
    refresh_all(pool, &mixed).await;
    sqlx::query("DELETE FROM marketing.events WHERE user_id = 'u2'").execute(pool).await.unwrap();
    let kinds = refresh_all(pool, &mixed).await;
    let weekly = kinds.iter().find(|k| k.0 == "weekly_campaign_metrics").unwrap();
    assert_eq!((weekly.1, weekly.2), (tally::aggregates::RefreshKind::Incremental, None), "{kinds:?}");
    assert_matches_scratch(pool, &mixed, "daily in concurrently mode, weekly incremental").await;

    // tally status names what each reads.
    let status = tally(&["status"]).database(&db.url).config_file(&format!("{NEW_YORK}{INCREMENTAL}")).output().await;
    assert_eq!(status.code, Some(0), "{status:?}");
    let weekly = status.stdout.split("weekly_campaign_metrics").nth(1).unwrap_or_else(|| panic!("{}", status.stdout));
    assert!(weekly.contains("reads:        daily_campaign_metrics"), "{}", status.stdout);
}

#[tokio::test]
async fn a_rollup_of_rollups_refreshed_before_its_input_exists_says_so() {
    let db = TestDb::migrated().await;
    for toml in ["", INCREMENTAL] {
        let refresher = crate::harness::refresher(&db.pool, config(toml));
        let weekly = tally::aggregates::find("weekly_campaign_metrics").unwrap();
        let report = refresher.refresh(weekly).await.unwrap();
        assert_eq!(report.outcome, tally::refresh::RefreshOutcome::Failure, "{toml}");
        assert_eq!(
            report.error.as_deref(),
            Some("reporting.weekly_campaign_metrics reads daily_campaign_metrics, which must be built first"),
            "{toml}"
        );
    }
}
