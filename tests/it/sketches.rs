//! Visitor sketches (SPEC §4.1): `visitors_hll` in `daily_campaign_metrics`
//! and `daily_event_counts`, in both modes, counting a returning visitor once
//! over any range; and tally without the extension: no sketch columns, a
//! status line that says how to get them, and sketches added online once
//! the extension exists.

use sqlx::PgPool;
use tally::aggregates::features::ensure_extension;

use crate::harness::{TestDb, assert_matches_scratch, config, count, create_months, features, refresh_all, tally};

/// Visits: u1 on three days, u2 on two, u3 once, all from google/brand;
/// one anonymous event; one visit from bing.
async fn visits(pool: &PgPool) {
    sqlx::raw_sql(
        "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES
         ('u1', 'page_view', 'google', 'brand', '2026-11-01 10:00+00'),
         ('u1', 'page_view', 'google', 'brand', '2026-11-02 10:00+00'),
         ('u1', 'signup',    'google', 'brand', '2026-11-03 10:00+00'),
         ('u2', 'page_view', 'google', 'brand', '2026-11-01 11:00+00'),
         ('u2', 'page_view', 'google', 'brand', '2026-11-03 11:00+00'),
         ('u3', 'page_view', 'google', 'brand', '2026-11-02 12:00+00'),
         (NULL, 'page_view', 'google', 'brand', '2026-11-02 13:00+00'),
         ('u4', 'page_view', 'bing',   'generic', '2026-11-02 14:00+00')",
    )
    .execute(pool)
    .await
    .unwrap();
}

async fn scalar(pool: &PgPool, sql: &str) -> String {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT ({sql})::text"))).fetch_one(pool).await.unwrap()
}

const INCREMENTAL: &str = "[aggregates.daily_campaign_metrics]\nmode = \"incremental\"\n\
                           [aggregates.daily_event_counts]\nmode = \"incremental\"\n";

#[tokio::test]
async fn sketches_count_a_returning_visitor_once_over_any_range_in_both_modes() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    assert!(features(pool).await.sketches, "the test server needs postgresql-hll (.ci/run installs postgresql-15-hll)");
    create_months(pool).await;
    visits(pool).await;
    for toml in ["", INCREMENTAL] {
        let config = config(toml);
        refresh_all(pool, &config).await;
        let range = "SELECT hll_cardinality(hll_union_agg(visitors_hll))::int FROM reporting.daily_campaign_metrics \
                     WHERE utm_source = 'google' AND day BETWEEN '2026-11-01' AND '2026-11-03'";
        assert_eq!(scalar(pool, range).await, "3", "{toml}: u1, u2, u3 once each over the range");
        let summed = "SELECT sum(visitors) FROM reporting.daily_campaign_metrics WHERE utm_source = 'google'";
        assert_eq!(scalar(pool, summed).await, "6", "summing days counts returning visitors again");
        let per_day = "SELECT count(*) FROM reporting.daily_campaign_metrics \
                       WHERE hll_cardinality(visitors_hll)::int <> visitors";
        assert_eq!(scalar(pool, per_day).await, "0", "each day's sketch counts that day's visitors");
        let events = "SELECT hll_cardinality(hll_union_agg(visitors_hll))::int FROM reporting.daily_event_counts";
        assert_eq!(scalar(pool, events).await, "4", "over every event and day: u1 to u4");
        assert_matches_scratch(pool, &config, toml).await;
    }
    // Incremental: a visit moved to another day rewrites both days' sketches.
    sqlx::query("UPDATE marketing.events SET occurred_at = '2026-11-04 10:00+00' WHERE user_id = 'u3'")
        .execute(pool)
        .await
        .unwrap();
    let config = config(INCREMENTAL);
    refresh_all(pool, &config).await;
    assert_matches_scratch(pool, &config, "after a visit moved").await;
    let day_two = "SELECT hll_cardinality(visitors_hll)::int FROM reporting.daily_campaign_metrics \
                   WHERE utm_source = 'google' AND day = '2026-11-02'";
    assert_eq!(scalar(pool, day_two).await, "1", "only u1 is left on 2026-11-02");
}

#[tokio::test]
async fn without_the_extension_tally_runs_says_how_to_get_sketches_and_adds_them_online() {
    // Migrated as tally migrate would, but the extension not created yet.
    let db = TestDb::empty().await;
    tally::MIGRATOR.run(&db.pool).await.unwrap();
    let pool = &db.pool;
    create_months(pool).await;
    visits(pool).await;
    assert!(!features(pool).await.sketches);

    // A role that may not create the untrusted extension: refused, said, not fatal.
    let role = format!("{}_plain", db.name);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN NOSUPERUSER; GRANT CONNECT ON DATABASE {} TO {role}",
        db.name
    )))
    .execute(pool)
    .await
    .unwrap();
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(db.url.expose()).unwrap();
    let plain = PgPool::connect_with(options.username(&role)).await.unwrap();
    assert!(!ensure_extension(&plain).await.unwrap(), "a plain role cannot turn sketches on");
    plain.close().await;

    for toml in ["", INCREMENTAL] {
        let out = tally(&["refresh"]).database(&db.url).config_file(toml).output().await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(
            out.stdout.contains(
                "weekly_campaign_metrics: not built: it reads visitor sketches and the server has none; \
                                 to build it, install the postgresql-hll extension"
            ),
            "{}",
            out.stdout
        );
    }
    // The daily rollup's incremental refreshes leave no marks for rollups that cannot exist.
    let marks = "SELECT count(*) FROM tally.invalidations WHERE aggregate IN ('weekly_campaign_metrics', 'monthly_campaign_metrics')";
    let incremental_coarser = format!(
        "{INCREMENTAL}[aggregates.weekly_campaign_metrics]\nmode = \"incremental\"\n[aggregates.monthly_campaign_metrics]\nmode = \"incremental\"\n"
    );
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '2026-11-02 09:00+00')")
        .execute(pool)
        .await
        .unwrap();
    let out = tally(&["refresh"]).database(&db.url).config_file(&incremental_coarser).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(count(pool, marks).await, 0, "{}", out.stdout);
    // Asked for by name, the rollup that cannot be built fails the command, saying why.
    let out = tally(&["refresh", "monthly_campaign_metrics"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("monthly_campaign_metrics: it reads visitor sketches"), "{}", out.stderr);
    let rollups =
        "SELECT count(*) FROM pg_class WHERE relname IN ('weekly_campaign_metrics', 'monthly_campaign_metrics')";
    assert_eq!(count(pool, rollups).await, 0, "no coarser rollups without the extension");
    // And no staleness series that would alert forever.
    let metrics = std::sync::Arc::new(tally::metrics::Metrics::new(&[("weekly_campaign_metrics", "concurrently")]));
    let refresher = tally::refresh::Refresher::new(
        pool.clone(),
        config(""),
        metrics.clone(),
        tokio_util::sync::CancellationToken::new(),
    );
    let weekly = tally::aggregates::find("weekly_campaign_metrics").unwrap();
    let before = metrics.render(chrono::Utc::now());
    assert!(
        before.contains("tally_aggregate_staleness_seconds{aggregate=\"weekly_campaign_metrics\"} +Inf"),
        "{before}"
    );
    assert_eq!(refresher.refresh(weekly).await.unwrap_err(), tally::refresh::NotStarted::NeedsSketches);
    let after = metrics.render(chrono::Utc::now());
    assert!(!after.contains("tally_aggregate_staleness_seconds{aggregate=\"weekly_campaign_metrics\"}"), "{after}");
    let columns = "SELECT count(*) FROM pg_attribute WHERE attname = 'visitors_hll' AND NOT attisdropped \
                   AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'reporting'::regnamespace AND relkind IN ('r', 'm'))";
    assert_eq!(count(pool, columns).await, 0, "no sketch column without the extension");
    let status = tally(&["status"]).database(&db.url).output().await;
    assert!(
        status.stdout.contains("VISITOR SKETCHES\n  off: install the postgresql-hll extension")
            && status.stdout.contains("not built until then: weekly_campaign_metrics, monthly_campaign_metrics"),
        "{}",
        status.stdout
    );

    // tally migrate creates it (a superuser here); the next refresh rebuilds
    // both aggregates online with their sketches.
    let migrate = tally(&["migrate"]).database(&db.url).output().await;
    assert_eq!(migrate.code, Some(0), "{migrate:?}");
    assert!(features(pool).await.sketches);
    let out = tally(&["refresh"]).database(&db.url).config_file(INCREMENTAL).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("daily_campaign_metrics") && out.stdout.contains("rebuilt"), "{}", out.stdout);
    assert!(out.stdout.contains("weekly_campaign_metrics: refreshed ("), "{}", out.stdout);
    assert_eq!(count(pool, columns).await, 4, "daily_campaign_metrics, daily_event_counts and the coarser rollups");
    let status = tally(&["status", "--json"]).database(&db.url).output().await;
    assert!(status.stdout.contains("\"sketches\": true"), "{}", status.stdout);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("REVOKE CONNECT ON DATABASE {} FROM {role}; DROP ROLE {role}", db.name)))
        .execute(pool)
        .await
        .unwrap();
}

/// The demo report's visitors over its 30 days count each person once, with
/// the sketches or, without the extension, from the events themselves.
#[tokio::test]
async fn the_demo_report_counts_visitors_once_over_its_30_days() {
    for with_sketches in [true, false] {
        let db = match with_sketches {
            true => TestDb::migrated().await,
            false => {
                let db = TestDb::empty().await;
                tally::MIGRATOR.run(&db.pool).await.unwrap();
                db
            }
        };
        let pool = &db.pool;
        assert_eq!(features(pool).await.sketches, with_sketches);
        let months: Vec<tally::partitions::Month> =
            (-2..2).map(|n| tally::partitions::Month::of(chrono::Utc::now().date_naive()).plus(n)).collect();
        tally::partitions::create_months(pool, &config(""), &tally::partitions::ManagedTable::events(), &months)
            .await
            .unwrap();
        sqlx::raw_sql(
            "INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at) VALUES
             ('u1', 'page_view', 'google', 'brand', now() - interval '1 day'),
             ('u1', 'page_view', 'google', 'brand', now() - interval '2 days'),
             ('u1', 'signup',    'google', 'brand', now() - interval '3 days'),
             ('u2', 'page_view', 'google', 'brand', now() - interval '1 day'),
             ('u2', 'page_view', 'google', 'brand', now() - interval '3 days'),
             ('u3', 'page_view', 'google', 'brand', now() - interval '2 days')",
        )
        .execute(pool)
        .await
        .unwrap();
        refresh_all(pool, &config("")).await;
        let report = tally::demo::report::campaign_report(pool, &config("")).await.unwrap();
        let line = report.lines().find(|l| l.starts_with("google")).unwrap_or_else(|| panic!("{report}"));
        let visitors: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(visitors[2], "3", "sketches: {with_sketches}; 6 daily visits of 3 people: {report}");
    }
}
