//! Aggregates declared in the config (SPEC §10) over schemas tally did not
//! design: a shop (`shop.orders` with a customer dimension, uuid keys,
//! unpartitioned) and a Segment-style `app.tracks` partitioned by month with
//! `app.identifies`. In both modes, after random inserts, late rows,
//! updates that move rows across days, deletes, dimension updates and
//! TRUNCATE, each equals its SELECT run directly, and in incremental mode
//! `_live` equals it before any refresh. What users see of them through the
//! binary is in `operations`.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sqlx::PgPool;
use tally::aggregates::Aggregate;
use tally::aggregates::RefreshKind;
use tally::config::Config;
use tally::refresh::RefreshOutcome;

use crate::harness::{TestDb, count, features, refresher};

mod operations;

const SCHEMAS: &str = "
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id uuid PRIMARY KEY, country text NOT NULL, tier text);
CREATE TABLE shop.orders (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    customer_id uuid,
    placed_at timestamptz NOT NULL,
    status text NOT NULL,
    total numeric(12, 2) NOT NULL);
CREATE INDEX ON shop.orders (customer_id);
CREATE SCHEMA app;
CREATE TABLE app.identifies (user_id text PRIMARY KEY, plan text);
CREATE TABLE app.tracks (
    id bigint GENERATED ALWAYS AS IDENTITY,
    user_id text,
    event text NOT NULL,
    ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE app.tracks_2026_09 PARTITION OF app.tracks FOR VALUES FROM ('2026-09-01') TO ('2026-10-01');
CREATE TABLE app.tracks_2026_10 PARTITION OF app.tracks FOR VALUES FROM ('2026-10-01') TO ('2026-11-01');
CREATE TABLE app.tracks_2026_11 PARTITION OF app.tracks FOR VALUES FROM ('2026-11-01') TO ('2026-12-01');
CREATE TABLE app.tracks_default PARTITION OF app.tracks DEFAULT;
CREATE INDEX ON app.tracks (user_id);
";

/// Orders per day (in Paris) and country: count, distinct customers, paid revenue (FILTER).
const SHOP_DAILY: &str = "
-- what the shop's dashboard reads
SELECT (o.placed_at AT TIME ZONE 'Europe/Paris')::date AS day,
       c.country,
       count(*) AS orders,
       count(DISTINCT o.customer_id) AS customers,
       coalesce(sum(o.total) FILTER (WHERE o.status = 'paid'), 0) AS paid_revenue
FROM shop.orders AS o
JOIN shop.customers AS c ON c.id = o.customer_id
GROUP BY 1, 2;
";

/// Tracks per day (in New York), event and plan (a LEFT JOIN: unknown users under NULL).
const TRACKS_DAILY: &str = "
SELECT (t.ts AT TIME ZONE 'America/New_York')::date AS day,
       t.event,
       coalesce(i.plan, 'unknown') AS plan,
       count(*) AS tracks,
       count(DISTINCT t.user_id) AS users
FROM app.tracks t
LEFT JOIN app.identifies i ON i.user_id = t.user_id
GROUP BY 1, 2, 3
";

/// Per day in New York too (the same day rule as tracks_daily: their marks are shared).
const TRACKS_HOURS: &str = "
SELECT (t.ts AT TIME ZONE 'America/New_York')::date AS day,
       count(*) AS tracks,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(hour FROM t.ts AT TIME ZONE 'America/New_York')) AS median_hour
FROM app.tracks t
GROUP BY 1
";

/// The same users as a mergeable sketch (postgresql-hll), where the server has it.
const TRACKS_SKETCH: &str = "
SELECT (t.ts AT TIME ZONE 'UTC')::date AS day,
       hll_add_agg(hll_hash_text(t.user_id), 14) AS users_hll,
       count(*) AS tracks
FROM app.tracks t
GROUP BY 1
";

/// The files and a config declaring the aggregates in `mode`.
struct Declared {
    dir: tempfile::TempDir,
    names: Vec<&'static str>,
}

impl Declared {
    fn new(sketches: bool) -> Declared {
        let dir = tempfile::tempdir().unwrap();
        let mut files =
            vec![("shop_daily", SHOP_DAILY), ("tracks_daily", TRACKS_DAILY), ("tracks_hours", TRACKS_HOURS)];
        if sketches {
            files.push(("tracks_sketch", TRACKS_SKETCH));
        }
        std::fs::create_dir(dir.path().join("aggregates")).unwrap();
        for (name, sql) in &files {
            std::fs::write(dir.path().join("aggregates").join(format!("{name}.sql")), sql).unwrap();
        }
        Declared { dir, names: files.iter().map(|(name, _)| *name).collect() }
    }

    fn toml(&self, mode: &str) -> String {
        self.names
            .iter()
            .map(|name| format!("[aggregates.{name}]\nsql = \"aggregates/{name}.sql\"\nmode = \"{mode}\"\n"))
            .collect()
    }

    fn config(&self, mode: &str) -> Arc<Config> {
        let path = self.dir.path().join("tally.toml");
        std::fs::write(&path, self.toml(mode)).unwrap();
        Arc::new(Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}")))
    }
}

async fn execute(pool: &PgPool, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(pool).await.unwrap_or_else(|e| panic!("{e}\n{sql}"));
}

/// Rows of `relation` that differ from the aggregate's SELECT run directly
/// (as the user wrote it, from its file), as text.
async fn differences(pool: &PgPool, aggregate: &Aggregate, relation: &str) -> Vec<String> {
    let file = aggregate.declared.expect("declared").file.clone();
    let direct = std::fs::read_to_string(file).unwrap();
    let direct = direct.trim().trim_end_matches(';');
    let sql = format!(
        "SELECT x::text FROM (
             (SELECT 'stored' AS side, t::text FROM {relation} AS t EXCEPT ALL SELECT 'stored', s::text FROM ({direct}\n) AS s)
             UNION ALL
             (SELECT 'direct', s::text FROM ({direct}\n) AS s EXCEPT ALL SELECT 'direct', t::text FROM {relation} AS t)) AS x
         LIMIT 10"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await.unwrap()
}

async fn assert_equal_to_select(pool: &PgPool, config: &Config, names: &[&str], live: bool, context: &str) {
    for name in names {
        let aggregate = config.find(name).unwrap();
        let relation =
            if live { tally::aggregates::live::qualified_name(aggregate) } else { aggregate.qualified_name() };
        let found = differences(pool, aggregate, &relation).await;
        assert!(found.is_empty(), "{context}: {relation} differs from its SELECT:\n{}", found.join("\n"));
    }
}

async fn refresh(pool: &PgPool, config: &Arc<Config>, names: &[&str]) -> Vec<(String, RefreshKind, Option<i64>)> {
    let refresher = refresher(pool, config.clone());
    let mut done = Vec::new();
    for name in names {
        let report = refresher.refresh(config.find(name).unwrap()).await.unwrap();
        assert_eq!(report.outcome, RefreshOutcome::Success, "{name}: {:?}", report.error);
        done.push((name.to_string(), report.kind.unwrap(), report.days));
    }
    done
}

/// A seeded random operation on the two schemas.
fn operation(rng: &mut StdRng) -> String {
    let customer = |rng: &mut StdRng| format!("'00000000-0000-0000-0000-{:012}'", rng.random_range(0..12));
    let at = |rng: &mut StdRng| {
        format!("('2026-11-20 12:00+00'::timestamptz - interval '{} minutes')", rng.random_range(0..80 * 24 * 60))
    };
    let user = |rng: &mut StdRng| format!("'u{}'", rng.random_range(0..20));
    match rng.random_range(0..100) {
        0..=19 => {
            let rows: Vec<String> = (0..rng.random_range(1..40))
                .map(|_| {
                    let status = if rng.random_bool(0.7) { "paid" } else { "refunded" };
                    format!(
                        "({}, {}, '{status}', {}.{:02})",
                        customer(rng),
                        at(rng),
                        rng.random_range(1..500),
                        rng.random_range(0..100)
                    )
                })
                .collect();
            format!("INSERT INTO shop.orders (customer_id, placed_at, status, total) VALUES {}", rows.join(", "))
        }
        20..=26 => format!(
            "UPDATE shop.orders SET placed_at = placed_at + interval '{} hours' WHERE id IN (SELECT id FROM shop.orders ORDER BY id LIMIT {})",
            rng.random_range(-72..72),
            rng.random_range(1..5)
        ),
        27..=31 => format!("UPDATE shop.orders SET status = 'refunded' WHERE customer_id = {}", customer(rng)),
        32..=36 => {
            "DELETE FROM shop.orders WHERE id IN (SELECT id FROM shop.orders ORDER BY total LIMIT 3)".to_string()
        }
        37..=42 => {
            let country = ["FR", "DE", "US", "JP"][rng.random_range(0..4)];
            format!("UPDATE shop.customers SET country = '{country}' WHERE id = {}", customer(rng))
        }
        43..=44 => format!("DELETE FROM shop.customers WHERE id = {}", customer(rng)),
        45..=47 => format!(
            "INSERT INTO shop.customers (id, country) VALUES ({}, 'ES') ON CONFLICT (id) DO UPDATE SET country = 'ES'",
            customer(rng)
        ),
        48..=69 => {
            let rows: Vec<String> = (0..rng.random_range(1..50))
                .map(|_| {
                    let event = ["page", "signup", "purchase"][rng.random_range(0..3)];
                    format!("({}, '{event}', {})", user(rng), at(rng))
                })
                .collect();
            format!("INSERT INTO app.tracks (user_id, event, ts) VALUES {}", rows.join(", "))
        }
        // A late row, months before the others (the default partition).
        70..=72 => format!(
            "INSERT INTO app.tracks (user_id, event, ts) VALUES ({}, 'page', '2026-03-0{} 23:30+00')",
            user(rng),
            rng.random_range(1..9)
        ),
        73..=78 => format!(
            "UPDATE app.tracks SET ts = ts - interval '{} hours' WHERE id IN (SELECT id FROM app.tracks ORDER BY id DESC LIMIT {})",
            rng.random_range(1..60),
            rng.random_range(1..6)
        ),
        79..=82 => "DELETE FROM app.tracks WHERE id IN (SELECT id FROM app.tracks ORDER BY ts LIMIT 4)".to_string(),
        83..=90 => {
            let plan = ["free", "pro", "team"][rng.random_range(0..3)];
            format!(
                "INSERT INTO app.identifies (user_id, plan) VALUES ({}, '{plan}') ON CONFLICT (user_id) DO UPDATE SET plan = excluded.plan",
                user(rng)
            )
        }
        91..=93 => format!("DELETE FROM app.identifies WHERE user_id = {}", user(rng)),
        94..=95 => format!("UPDATE app.identifies SET user_id = user_id || 'x' WHERE user_id = {}", user(rng)),
        96 => "TRUNCATE app.identifies".to_string(),
        97 => "TRUNCATE shop.orders".to_string(),
        _ => "TRUNCATE app.tracks".to_string(),
    }
}

async fn seed(pool: &PgPool) {
    execute(pool, SCHEMAS).await;
    execute(
        pool,
        "INSERT INTO shop.customers (id, country, tier)
         SELECT ('00000000-0000-0000-0000-' || lpad(n::text, 12, '0'))::uuid, (ARRAY['FR', 'DE', 'US'])[n % 3 + 1], NULL
         FROM generate_series(0, 9) AS n;
         INSERT INTO shop.orders (customer_id, placed_at, status, total)
         SELECT ('00000000-0000-0000-0000-' || lpad((n % 10)::text, 12, '0'))::uuid,
                '2026-11-20 12:00+00'::timestamptz - n * interval '7 hours', 'paid', n
         FROM generate_series(1, 200) AS n;
         INSERT INTO app.identifies VALUES ('u1', 'pro'), ('u2', 'free');
         INSERT INTO app.tracks (user_id, event, ts)
         SELECT 'u' || (n % 15), (ARRAY['page', 'signup'])[n % 2 + 1], '2026-11-20 12:00+00'::timestamptz - n * interval '5 hours'
         FROM generate_series(1, 300) AS n",
    )
    .await;
}

async fn random_rounds(mode: &str, seed_value: u64) {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let declared = Declared::new(features(pool).await.sketches);
    let config = declared.config(mode);
    let names = declared.names.clone();
    refresh(pool, &config, &names).await;
    assert_equal_to_select(pool, &config, &names, false, "after the build").await;
    let mut rng = StdRng::seed_from_u64(seed_value);
    let mut rewritten = 0;
    for round in 0..8 {
        for _ in 0..12 {
            execute(pool, &operation(&mut rng)).await;
        }
        let context = format!("{mode}, seed {seed_value}, round {round}");
        if mode == "incremental" {
            assert_equal_to_select(pool, &config, &names, true, &format!("{context}, live before the refresh")).await;
        }
        let done = refresh(pool, &config, &names).await;
        let expected = if mode == "incremental" { RefreshKind::Incremental } else { RefreshKind::Refreshed };
        assert!(done.iter().all(|(_, kind, _)| *kind == expected), "{context}: {done:?}");
        rewritten += done.iter().filter_map(|(_, _, days)| *days).sum::<i64>();
        assert_equal_to_select(pool, &config, &names, false, &context).await;
    }
    if mode == "incremental" {
        assert!(rewritten > 0, "some refreshes rewrote only some days");
    }
}

#[tokio::test]
async fn declared_aggregates_equal_their_select_incrementally_under_random_writes() {
    random_rounds("incremental", 7).await;
}

#[tokio::test]
async fn declared_aggregates_equal_their_select_concurrently_under_random_writes() {
    random_rounds("concurrently", 11).await;
}

#[tokio::test]
async fn a_dimension_update_rewrites_exactly_the_days_of_the_rows_it_joins() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let declared = Declared::new(false);
    let config = declared.config("incremental");
    refresh(pool, &config, &["shop_daily"]).await;
    // Customer 3's orders fall on these days (in Paris).
    let days = count(
        pool,
        "SELECT count(DISTINCT (placed_at AT TIME ZONE 'Europe/Paris')::date) FROM shop.orders
         WHERE customer_id = '00000000-0000-0000-0000-000000000003'",
    )
    .await;
    execute(pool, "UPDATE shop.customers SET country = 'JP' WHERE id = '00000000-0000-0000-0000-000000000003'").await;
    let marks =
        count(pool, "SELECT count(*) FROM tally.invalidations WHERE aggregate = 'shop_daily' AND kind = 'join'").await;
    assert_eq!(marks, 1, "one mark for the statement");
    let done = refresh(pool, &config, &["shop_daily"]).await;
    assert_eq!(done[0].2, Some(days), "the days of customer 3's orders, no more");
    assert_equal_to_select(pool, &config, &["shop_daily"], false, "after the country change").await;
    let japan = count(pool, "SELECT count(*) FROM reporting.shop_daily WHERE country = 'JP'").await;
    assert_eq!(japan, days);
}

#[tokio::test]
async fn an_aggregate_reading_another_is_refreshed_after_it_for_its_changed_days_and_tally_reader_reads_both() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shop_daily.sql"), SHOP_DAILY).unwrap();
    std::fs::write(
        dir.path().join("shop_totals.sql"),
        "SELECT d.day, sum(d.orders) AS orders, sum(d.paid_revenue) AS paid_revenue FROM reporting.shop_daily d GROUP BY 1",
    )
    .unwrap();
    let path = dir.path().join("tally.toml");
    std::fs::write(
        &path,
        "[aggregates.shop_totals]\nsql = \"shop_totals.sql\"\nmode = \"incremental\"\n\
         [aggregates.shop_daily]\nsql = \"shop_daily.sql\"\nmode = \"incremental\"\n",
    )
    .unwrap();
    let config = Arc::new(Config::load(Some(&path)).unwrap());
    let totals = config.find("shop_totals").unwrap();
    assert_eq!(totals.depends_on, ["shop_daily"]);
    let order: Vec<&str> = config.registry().iter().map(|a| a.name).filter(|n| n.starts_with("shop")).collect();
    assert_eq!(order, ["shop_daily", "shop_totals"], "what it reads comes first, whatever the file's order");
    refresh(pool, &config, &order).await;
    execute(pool, "UPDATE shop.orders SET total = total + 1 WHERE placed_at >= '2026-11-19 00:00+01' AND placed_at < '2026-11-20 00:00+01'")
        .await;
    let done = refresh(pool, &config, &order).await;
    assert_eq!(done[0].2, Some(1), "one day of shop_daily: {done:?}");
    assert_eq!(done[1].2, Some(1), "and the same day of shop_totals: {done:?}");
    assert_equal_to_select(pool, &config, &order, false, "the rollup of a rollup").await;
    // tally_reader (created by the migrations where the role may) reads them, and not the shop.
    let reader = sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_reader')")
        .fetch_one(pool)
        .await
        .unwrap();
    if reader {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *tx).await.unwrap();
        for relation in ["reporting.shop_daily", "reporting.shop_daily_live", "reporting.shop_totals"] {
            let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {relation}")))
                .fetch_one(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("tally_reader reads {relation}: {e}"));
            assert!(rows > 0, "{relation}");
        }
        let denied = sqlx::query("SELECT count(*) FROM shop.orders").execute(&mut *tx).await.unwrap_err();
        assert!(denied.to_string().contains("permission denied"), "{denied}");
    }
}

/// What tally runs is the parser's printing of the user's SELECT: on
/// constructs people write in psql, it returns exactly what the text does.
#[tokio::test]
async fn the_printed_select_returns_what_the_users_text_returns() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    execute(pool, "ALTER TABLE shop.orders ADD COLUMN meta jsonb DEFAULT '{\"channel\": \"web\", \"n\": 2}'").await;
    let selects = [
        "SELECT (o.placed_at AT TIME ZONE 'Asia/Kolkata')::date AS day, o.meta->>'channel' AS channel, \
         percentile_cont(0.5) WITHIN GROUP (ORDER BY o.total) AS median, \
         string_agg(DISTINCT o.status, ',' ORDER BY o.status) AS statuses, \
         array_agg(o.total ORDER BY o.total DESC) FILTER (WHERE o.total > 100) AS big \
         FROM shop.orders o WHERE o.status ILIKE 'p%' AND o.placed_at > now() - interval '1 year' GROUP BY 1, 2",
        "SELECT CAST(o.placed_at AT TIME ZONE 'UTC' AS date) AS day, \
         CASE WHEN o.total::numeric(8,1) > 50 THEN 'big' ELSE 'small' END AS size, \
         count(*) FILTER (WHERE o.status IN ('paid', 'refunded')) AS n, sum((o.meta->>'n')::int) AS n2, \
         round(avg(o.total), 2) AS avg_total, max(o.placed_at) - min(o.placed_at) AS span, \
         bool_or(o.status ~* '^re') AS any_refund, count(*) * 100.0 / nullif(sum(count(*)) OVER (PARTITION BY CAST(o.placed_at AT TIME ZONE 'UTC' AS date)), 0) AS share \
         FROM shop.orders AS o LEFT JOIN shop.customers c USING (id) \
         WHERE o.meta @> '{\"channel\": \"web\"}' AND coalesce(c.country, 'none') <> 'XX' \
         GROUP BY 1, 2 HAVING count(*) > 0",
        "SELECT t.day, t.event, count(DISTINCT t.user_id) AS users, \
         hll_cardinality(hll_add_agg(hll_hash_text(t.user_id))) AS approx \
         FROM (SELECT (ts AT TIME ZONE 'UTC')::date AS day, event, user_id FROM app.tracks) AS t GROUP BY 1, 2",
    ];
    let has_hll = features(pool).await.sketches;
    for (index, sql) in selects.iter().enumerate() {
        if sql.contains("hll_") && !has_hll {
            continue;
        }
        let reading = tally::aggregates::declared::read(sql, None).unwrap_or_else(|p| panic!("{sql}: {p}"));
        let printed = tally::aggregates::declared::Declared { file: "x.sql".into(), reading }.scoped("true");
        let rows = |sql: String| async move {
            sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SELECT x::text FROM ({sql}) AS x ORDER BY 1")))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{e}: {sql}"))
        };
        let (direct, through) = (rows(sql.to_string()).await, rows(printed.clone()).await);
        assert!(!direct.is_empty(), "select {index} returns rows");
        assert_eq!(direct, through, "select {index} printed as:\n{printed}");
    }
}

#[tokio::test]
async fn aggregates_with_the_same_day_rule_share_one_mark_per_statement_and_each_refresh_takes_its_part() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let declared = Declared::new(false);
    let config = declared.config("incremental");
    let names = ["tracks_daily", "tracks_hours"];
    refresh(pool, &config, &names).await;
    for n in 0..5 {
        execute(
            pool,
            &format!("INSERT INTO app.tracks (user_id, event, ts) VALUES ('u{n}', 'page', '2026-11-19 15:00+00')"),
        )
        .await;
    }
    let shared = "SELECT count(*) FROM tally.invalidations WHERE members = ARRAY['tracks_daily', 'tracks_hours']";
    assert_eq!(count(pool, shared).await, 5, "one mark per statement for both");
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations").await, 5);
    assert_equal_to_select(pool, &config, &names, true, "live, from the shared marks").await;
    // The first refresh hands each member its own (five statements of one day: one mark each), and takes its own.
    let done = refresh(pool, &config, &names[..1]).await;
    assert_eq!(done[0].2, Some(1), "{done:?}");
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations WHERE aggregate = 'tracks_hours'").await, 1);
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations").await, 1);
    assert_equal_to_select(pool, &config, &names[1..], true, "live, from its own mark").await;
    let done = refresh(pool, &config, &names[1..]).await;
    assert_eq!(done[0].2, Some(1), "{done:?}");
    assert_eq!(count(pool, "SELECT count(*) FROM tally.invalidations").await, 0);
    assert_equal_to_select(pool, &config, &names, false, "after both refreshes").await;
}
