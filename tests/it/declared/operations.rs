//! Declared aggregates through the binary, as users run them: refused SQL,
//! a key that is not unique and a missing table failing alone, a changed
//! file deployed online and a removed aggregate listed, a role without the
//! TRIGGER right told the GRANT, and the worker scheduling one.

use std::sync::Arc;

use tally::aggregates::RefreshKind;
use tally::config::Config;

use super::{Declared, SHOP_DAILY, assert_equal_to_select, differences, execute, refresh, seed};
use crate::harness::{TestDb, count, refresher, tally};

/// `tally` as a user runs it, with the files in its working directory.
fn with_files(files: &[(&str, &str)], toml: &str) -> crate::harness::TallyCommand {
    let command = tally(&["refresh"]);
    for (name, text) in files {
        std::fs::write(command.dir.path().join(name), text).unwrap();
    }
    command.config_file(toml)
}

#[tokio::test]
async fn refused_sql_exits_2_naming_the_file_the_aggregate_and_the_construct_and_runs_nothing() {
    let db = TestDb::migrated().await;
    seed(&db.pool).await;
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "SELECT (o.placed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM shop.orders o GROUP BY 1;\nDROP TABLE shop.orders;",
            "concurrently",
            &["aggregates.bad.sql", "bad.sql", "holds 2 statements; it must hold exactly one SELECT"],
        ),
        ("DELETE FROM shop.orders", "concurrently", &["is a DELETE statement, not a SELECT"]),
        (
            "SELECT o.status, count(*) AS n FROM shop.orders o GROUP BY 1",
            "concurrently",
            &["aggregate `bad`", "bad.sql", "its day column `o.status` is text, not date"],
        ),
        (
            "SELECT o.placed_at + interval '1 day' AS day, count(*) AS n FROM shop.orders o GROUP BY 1",
            "concurrently",
            &["line 1, column 8", "the first key column `day`", "not a day"],
        ),
        (
            "SELECT (o.placed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM shop.orders o\nJOIN shop.customers c ON c.id <> o.customer_id GROUP BY 1",
            "incremental",
            &["line 2, column 6", "`shop.customers` is not joined to the fact table", "use mode = \"concurrently\""],
        ),
        (
            "SELECT (o.placed_at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM shop.orders o GROUP BY 1 LIMIT 5",
            "incremental",
            &["LIMIT/OFFSET", "use mode = \"concurrently\""],
        ),
    ];
    for (sql, mode, expected) in cases {
        let toml = format!("[aggregates.bad]\nsql = \"bad.sql\"\nmode = \"{mode}\"\n");
        let finished = with_files(&[("bad.sql", sql)], &toml).database(&db.url).output().await;
        assert_eq!(finished.code, Some(2), "{sql}: {finished:?}");
        for text in expected {
            assert!(finished.stderr.contains(text), "{sql}: `{text}` not in: {}", finished.stderr);
        }
    }
    // Nothing ran: the table the second statement would drop is there, and no aggregate was built.
    assert_eq!(count(&db.pool, "SELECT count(*) FROM shop.orders").await, 200);
    assert_eq!(count(&db.pool, "SELECT count(*) FROM pg_class WHERE relname = 'bad'").await, 0);
}

#[tokio::test]
async fn a_key_that_is_not_unique_fails_that_refresh_naming_it_and_the_others_go_on() {
    let db = TestDb::migrated().await;
    seed(&db.pool).await;
    let files = [
        ("shop_daily.sql", SHOP_DAILY),
        // One row per day and status, but the key says one per day.
        (
            "by_status.sql",
            "SELECT (o.placed_at AT TIME ZONE 'UTC')::date AS day, o.status, count(*) AS n FROM shop.orders o GROUP BY 1, 2",
        ),
        ("missing.sql", "SELECT (m.at AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM shop.nowhere m GROUP BY 1"),
    ];
    execute(&db.pool, "INSERT INTO shop.orders (customer_id, placed_at, status, total) SELECT customer_id, placed_at, 'refunded', 1 FROM shop.orders LIMIT 5").await;
    for mode in ["concurrently", "incremental"] {
        let toml = format!(
            "[aggregates.shop_daily]\nsql = \"shop_daily.sql\"\nmode = \"{mode}\"\n\
             [aggregates.by_status]\nsql = \"by_status.sql\"\nkey = [\"day\"]\nmode = \"{mode}\"\n\
             [aggregates.missing]\nsql = \"missing.sql\"\nmode = \"{mode}\"\n"
        );
        let finished = with_files(&files, &toml).database(&db.url).output().await;
        assert_eq!(finished.code, Some(1), "{mode}: {finished:?}");
        let out = format!("{}{}", finished.stdout, finished.stderr);
        assert!(out.contains("shop_daily: refreshed"), "{mode}: {out}");
        assert!(out.contains("by_status") && out.contains("(day)") && out.contains("is duplicated"), "{mode}: {out}");
        assert!(out.contains("missing") && out.contains("shop.nowhere"), "{mode}: {out}");
        let built = count(&db.pool, "SELECT count(*) FROM reporting.shop_daily").await;
        assert!(built > 0, "{mode}");
        let kind = if mode == "incremental" { "TABLE" } else { "MATERIALIZED VIEW" };
        execute(&db.pool, &format!("DROP {kind} reporting.shop_daily CASCADE")).await;
    }
}

#[tokio::test]
async fn a_changed_sql_file_is_deployed_online_and_a_removed_aggregate_is_listed_with_its_drop() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    for mode in ["incremental", "concurrently"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.toml");
        std::fs::write(&path, format!("[aggregates.shop_daily]\nsql = \"shop.sql\"\nmode = \"{mode}\"\n")).unwrap();
        std::fs::write(dir.path().join("shop.sql"), SHOP_DAILY).unwrap();
        let config = Arc::new(Config::load(Some(&path)).unwrap());
        refresh(pool, &config, &["shop_daily"]).await;
        // The new definition: revenue of every order, not only the paid ones.
        std::fs::write(dir.path().join("shop.sql"), SHOP_DAILY.replace(" FILTER (WHERE o.status = 'paid')", ""))
            .unwrap();
        let changed = Arc::new(Config::load(Some(&path)).unwrap());
        let report = refresher(pool, changed.clone()).refresh(changed.find("shop_daily").unwrap()).await.unwrap();
        assert_eq!(report.kind, Some(RefreshKind::Rebuilt), "{mode}");
        assert_equal_to_select(pool, &changed, &["shop_daily"], false, mode).await;
        // Removed from the config: not dropped, but listed with its drop statement.
        let status = tally(&["status"]).database(&db.url).output().await;
        assert_eq!(status.code, Some(0), "{status:?}");
        let statement = match mode {
            "incremental" => "DROP TABLE reporting.shop_daily CASCADE;",
            _ => "DROP MATERIALIZED VIEW reporting.shop_daily CASCADE;",
        };
        assert!(
            status.stdout.contains("reporting.shop_daily") && status.stdout.contains(statement),
            "{}",
            status.stdout
        );
        assert!(count(pool, "SELECT count(*) FROM reporting.shop_daily").await > 0, "never dropped silently");
        execute(pool, statement).await;
    }
}

#[tokio::test]
async fn without_the_trigger_right_the_refresh_names_the_grant_and_succeeds_once_granted() {
    let db = TestDb::empty().await;
    let admin = &db.pool;
    let role = format!("{}_owner", db.name);
    execute(admin, &format!("CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE")).await;
    execute(admin, &format!("GRANT CONNECT, CREATE ON DATABASE {} TO {role}", db.name)).await;
    seed(admin).await;
    execute(
        admin,
        &format!("GRANT USAGE ON SCHEMA shop TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO {role}"),
    )
    .await;
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_username(&role).unwrap();
    let url = url.to_string();
    let migrated = tally(&["migrate"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(migrated.code, Some(0), "{migrated:?}");
    let toml = "[aggregates.shop_daily]\nsql = \"shop_daily.sql\"\nmode = \"incremental\"\n";
    let refused = with_files(&[("shop_daily.sql", SHOP_DAILY)], toml).env("DATABASE_URL", &url).output().await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    let grant = format!("GRANT TRIGGER ON \"shop\".\"orders\" TO \"{role}\";");
    assert!(refused.stderr.contains(&grant), "the GRANT to run: {}", refused.stderr);
    execute(admin, &format!("GRANT TRIGGER ON shop.orders, shop.customers TO {role}")).await;
    let granted = with_files(&[("shop_daily.sql", SHOP_DAILY)], toml).env("DATABASE_URL", &url).output().await;
    assert_eq!(granted.code, Some(0), "{granted:?}");
    assert!(granted.stdout.contains("shop_daily: refreshed (built"), "{}", granted.stdout);
    execute(admin, "UPDATE shop.customers SET country = 'JP'").await;
    let marks = count(admin, "SELECT count(*) FROM tally.invalidations WHERE aggregate = 'shop_daily'").await;
    assert_eq!(marks, 1, "the triggers run as tally's role for the writer");
    execute(admin, &format!("DROP OWNED BY {role} CASCADE; REVOKE ALL ON DATABASE {} FROM {role}", db.name)).await;
    let drop_role = format!("DROP ROLE {role}");
    let admin_db = sqlx::PgPool::connect(crate::harness::server_url().expose()).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop_role)).execute(&admin_db).await.unwrap();
}

#[tokio::test]
async fn the_worker_schedules_a_declared_aggregate_with_its_metrics_and_keeps_it_exact() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    seed(pool).await;
    let addr = crate::harness::free_addr();
    let command = tally(&["run"]).database(&db.url).env("TALLY_METRICS_ADDR", &addr.to_string());
    std::fs::write(command.dir.path().join("shop.sql"), SHOP_DAILY).unwrap();
    let toml = "[aggregates.shop_daily]\nsql = \"shop.sql\"\nmode = \"incremental\"\nevery = \"1s\"\n\
                [aggregates.daily_campaign_metrics]\nenabled = false\n[aggregates.daily_event_counts]\nenabled = false\n\
                [aggregates.daily_lead_funnel]\nenabled = false\n[aggregates.daily_attribution]\nenabled = false\n\
                [aggregates.daily_campaign_spend]\nenabled = false\n[aggregates.weekly_campaign_metrics]\nenabled = false\n\
                [aggregates.monthly_campaign_metrics]\nenabled = false\n";
    let mut worker = command.config_file(toml).spawn();
    let ok = "tally_refreshes_total{aggregate=\"shop_daily\",outcome=\"success\"}";
    crate::harness::wait_for_metric_within(addr, ok, 1.0, std::time::Duration::from_secs(60)).await;
    let rows = crate::harness::metric_of(addr, "tally_aggregate_rows{aggregate=\"shop_daily\"}").await;
    assert!(rows.is_some_and(|r| r > 0.0), "{rows:?}");
    execute(pool, "INSERT INTO shop.orders (customer_id, placed_at, status, total) VALUES ('00000000-0000-0000-0000-000000000001', '2026-11-18 09:00+00', 'paid', 1000)").await;
    let files = Declared::new(false);
    let config = files.config("incremental");
    let caught_up = crate::harness::wait_until(std::time::Duration::from_secs(30), || async {
        count(pool, "SELECT count(*) FROM tally.invalidations").await == 0
            && differences(pool, config.find("shop_daily").unwrap(), "reporting.shop_daily").await.is_empty()
    })
    .await;
    assert!(caught_up, "the worker rewrote the day: {}", worker.log());
    let staleness =
        crate::harness::metric_of(addr, "tally_aggregate_staleness_seconds{aggregate=\"shop_daily\"}").await;
    assert!(staleness.is_some_and(|s| s < 30.0), "{staleness:?}");
    worker.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(worker.wait(std::time::Duration::from_secs(30)).await, Some(0), "{}", worker.log());
}
