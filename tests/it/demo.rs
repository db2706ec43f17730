//! The demo: its data generator (deterministic, realistic shapes, coherent
//! with the models) and `tally demo --once` on a throwaway cluster.

use std::path::Path;

use chrono::{TimeZone, Utc};
use sqlx::PgPool;
use tally::demo::{GenerateOptions, generate};

use crate::harness::{TestDb, config, refresh_all, tally};

fn options(events: u64, seed: u32) -> GenerateOptions {
    GenerateOptions { events, seed, days: 60, anchor: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() }
}

/// A digest of everything generated, independent of generated ids (uuids).
async fn digest(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT md5(
           (SELECT string_agg(concat_ws('|', event_id, user_id, event, properties::text, session_id, utm_source,
                              utm_medium, utm_campaign, occurred_at, received_at), ',' ORDER BY event_id) FROM marketing.events)
        || (SELECT string_agg(concat_ws('|', email, source, campaign, utm_medium, user_id, status, score, created_at), ','
                              ORDER BY email) FROM marketing.leads)
        || (SELECT string_agg(concat_ws('|', l.email, c.kind, c.revenue, c.occurred_at), ',' ORDER BY l.email, c.occurred_at, c.kind)
            FROM marketing.conversions c JOIN marketing.leads l ON l.id = c.lead_id)
        || (SELECT string_agg(concat_ws('|', day, utm_source, utm_campaign, spend, impressions, clicks), ','
                              ORDER BY day, utm_source, utm_campaign) FROM marketing.campaign_spend))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_generator_is_deterministic_for_a_seed() {
    let (a, b, c) = (TestDb::migrated().await, TestDb::migrated().await, TestDb::migrated().await);
    let first = generate(&a.pool, &config(""), &options(20_000, 7)).await.unwrap();
    let second = generate(&b.pool, &config(""), &options(20_000, 7)).await.unwrap();
    generate(&c.pool, &config(""), &options(20_000, 8)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first.events, 20_000, "exactly the number of events asked for");
    assert_eq!(digest(&a.pool).await, digest(&b.pool).await, "same seed, same rows");
    assert_ne!(digest(&a.pool).await, digest(&c.pool).await, "another seed, other rows");
}

#[tokio::test]
async fn generated_data_has_realistic_shapes() {
    let db = TestDb::migrated().await;
    generate(&db.pool, &config(""), &options(50_000, 42)).await.unwrap();
    let shape: (f64, f64, f64, f64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
           (SELECT (count(*) FILTER (WHERE extract(isodow FROM occurred_at) >= 6) / 2.0)
                 / (count(*) FILTER (WHERE extract(isodow FROM occurred_at) < 6) / 5.0) FROM marketing.events)::float8,
           (SELECT avg(n) FROM (SELECT count(*) AS n FROM marketing.events GROUP BY session_id) s)::float8,
           (SELECT avg((utm_source IS NULL)::int) FROM marketing.events)::float8,
           (SELECT avg((received_at > occurred_at + interval '1 day')::int) FROM marketing.events)::float8,
           (SELECT count(DISTINCT utm_campaign) FROM marketing.events),
           (SELECT count(*) FROM marketing.leads WHERE user_id IS NULL),
           (SELECT count(*) FROM marketing.leads l WHERE user_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM marketing.events e WHERE e.user_id = l.user_id)),
           (SELECT count(*) FROM marketing.conversions WHERE kind = 'purchase' AND revenue > 0)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let (weekend_ratio, session_length, without_utm, late, campaigns, offline_leads, leads_without_events, purchases) =
        shape;
    assert!((0.4..0.75).contains(&weekend_ratio), "weekend days see fewer events: {weekend_ratio}");
    assert!((3.5..4.5).contains(&session_length), "sessions have several events: {session_length}");
    assert!((0.15..0.35).contains(&without_utm), "some events carry no UTM values: {without_utm}");
    assert!((0.005..0.02).contains(&late), "a little late data: {late}");
    assert_eq!(campaigns, 7);
    assert!(offline_leads >= 3, "{offline_leads}");
    assert_eq!(leads_without_events, 0, "online leads are linked to their visitors' events");
    assert!(purchases > 100, "{purchases}");
}

#[tokio::test]
async fn on_generated_data_every_model_credits_each_conversion_once() {
    let db = TestDb::migrated().await;
    generate(&db.pool, &config(""), &options(30_000, 3)).await.unwrap();
    refresh_all(&db.pool, &config("")).await;
    let mismatches: Vec<(String, String, String, String)> = sqlx::query_as(
        "WITH truth AS (
             SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, count(*)::numeric AS conversions, sum(revenue) AS revenue
             FROM marketing.conversions GROUP BY 1),
         credited AS (
             SELECT day, model, sum(conversions) AS conversions, sum(revenue) AS revenue
             FROM reporting.daily_attribution GROUP BY 1, 2)
         SELECT c.day::text, c.model, c.conversions::text, t.conversions::text
         FROM credited c LEFT JOIN truth t USING (day)
         WHERE round(c.conversions, 9) IS DISTINCT FROM t.conversions OR round(c.revenue, 9) IS DISTINCT FROM t.revenue",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    let models: i64 = sqlx::query_scalar("SELECT count(DISTINCT model) FROM reporting.daily_attribution")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(models, 5, "first_touch, last_touch, linear, time_decay, position_based");
}

#[tokio::test]
async fn demo_once_runs_on_a_throwaway_cluster_and_removes_it() {
    let out = tally(&["demo", "--once", "--events", "5000"]).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let mut lines = out.stdout.lines();
    assert!(lines.next().unwrap_or_default().starts_with("Top campaigns, last 30 days (UTC"), "{}", out.stdout);
    let header = lines.next().unwrap_or_default();
    for column in ["source", "campaign", "visitors", "signups", "purchases", "revenue", "spend", "cpa", "roas"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(out.stdout.contains("google       brand_search"), "{}", out.stdout);
    assert!(out.stdout.contains("(none)"), "traffic without UTM values is reported: {}", out.stdout);
    assert!(out.stdout.contains("Aggregate freshness"), "{}", out.stdout);
    for aggregate in tally::aggregates::names() {
        assert!(out.stdout.contains(aggregate), "{aggregate} in the freshness table: {}", out.stdout);
    }
    let dir = out
        .stderr
        .split("started a throwaway PostgreSQL cluster dir=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the cluster directory is logged");
    assert!(!Path::new(dir).exists(), "{dir} was removed");
    assert!(out.stderr.contains("removed the throwaway PostgreSQL cluster"));
}

#[tokio::test]
async fn bench_measures_both_modes_the_trigger_overhead_and_ingest() {
    let args =
        ["bench", "--events", "4000", "--days", "14", "--repeat", "1", "--copy-rows", "3000", "--ingest-rows", "2000"];
    let out = tally(&args).database(&crate::harness::server_url()).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("Machine: "), "{}", out.stdout);
    let row = out.stdout.lines().find(|l| l.starts_with("| 4000 |")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(row.contains("(1 day)") && row.ends_with("× |"), "{row}");
    let attribution = out.stdout.split("Attribution: build of").nth(1).unwrap_or_else(|| panic!("{}", out.stdout));
    let row = attribution.lines().find(|l| l.starts_with("| 4000 |")).unwrap_or_else(|| panic!("{attribution}"));
    assert!(row.ends_with("(1 day) |"), "one changed day of conversions is one day rewritten: {row}");
    let sketches = out.stdout.split("Cost of `visitors_hll`").nth(1).unwrap_or_else(|| panic!("{}", out.stdout));
    let row = sketches.lines().find(|l| l.starts_with("| 4000 |")).unwrap_or_else(|| panic!("{sketches}"));
    assert_eq!(row.matches("× |").count(), 2, "build and one day, with against without: {row}");
    let cycle = out.stdout.split("The whole cycle:").nth(1).unwrap_or_else(|| panic!("{}", out.stdout));
    let row = cycle.lines().find(|l| l.starts_with("| 4000 |")).unwrap_or_else(|| panic!("{cycle}"));
    assert_eq!(row.matches("× |").count(), 2, "whole process and inside the worker: {row}");
    let attribution =
        cycle.lines().find(|l| l.starts_with("| `daily_attribution` |")).unwrap_or_else(|| panic!("{cycle}"));
    assert!(!attribution.ends_with("| - |"), "the incremental run rewrote days: {attribution}");
    let live = out.stdout.split("Live reads:").nth(1).unwrap_or_else(|| panic!("{}", out.stdout));
    for dirty in ["| 0 |", "| 1 |", "| 7 |"] {
        assert!(live.lines().any(|l| l.starts_with(dirty)), "{dirty} in {live}");
    }
    assert!(out.stdout.contains("COPY of 3000 events"), "{}", out.stdout);
    assert!(out.stdout.contains("Trigger overhead: "), "{}", out.stdout);
    let ingest =
        out.stdout.lines().find(|l| l.starts_with("| `tally ingest` into")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(ingest.ends_with("× |"), "{ingest}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = 'tally_bench_4000'")
        .fetch_one(&sqlx::PgPool::connect(crate::harness::server_url().expose()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(left, 0, "the bench database is dropped");
}
