//! Least privilege, secrets and hostile input: the worker runs with only
//! CONNECT and CREATE on its database; hostile values are stored as data,
//! never executed; the worker never logs the password, in either log format.

use std::io::Write;
use std::time::Duration;

use nix::sys::signal::Signal;
use tally::db::EphemeralCluster;

use crate::harness::{TestDb, create_months, free_addr, http_get, tally, wait_for_metric_within};

const EVENT_COUNTS_OK: &str = "tally_refreshes_total{aggregate=\"daily_event_counts\",outcome=\"success\"}";

#[tokio::test]
async fn the_worker_needs_only_connect_and_create_on_its_database() {
    let mut cluster = tokio::task::spawn_blocking(EphemeralCluster::start).await.unwrap().unwrap();
    let admin = sqlx::PgPool::connect(cluster.url().expose()).await.unwrap();
    // Not superuser, no CREATEDB, no CREATEROLE; the database belongs to someone else.
    sqlx::query("CREATE ROLE worker LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").execute(&admin).await.unwrap();
    sqlx::query("CREATE DATABASE marketing").execute(&admin).await.unwrap();
    sqlx::query("GRANT CONNECT, CREATE ON DATABASE marketing TO worker").execute(&admin).await.unwrap();
    let url = format!("postgres://worker@127.0.0.1:{}/marketing", cluster.port());

    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    let mut file = std::fs::File::create(&events).unwrap();
    let today = chrono::Utc::now().format("%Y-%m-%d");
    for i in 0..50 {
        writeln!(
            file,
            r#"{{"_id":"e{i}","userId":"u{}","event":"page_view","timestamp":"{today}T10:00:00Z","properties":{{"utm_source":"google"}}}}"#,
            i % 7
        )
        .unwrap();
    }
    drop(file);
    for args in [
        vec!["migrate"],
        vec!["partitions"],
        vec!["ingest", events.to_str().unwrap()],
        vec!["refresh"],
        vec!["status"],
        vec!["doctor"],
        vec!["explain", "SELECT count(*) FROM reporting.daily_event_counts"],
    ] {
        let out = tally(&args).env("DATABASE_URL", &url).output().await;
        assert_eq!(out.code, Some(0), "{args:?} as a role with CONNECT and CREATE only: {out:?}");
    }
    // The worker too: it refreshes on schedule and maintains partitions.
    let addr = free_addr();
    let mut worker = tally(&["run"])
        .env("DATABASE_URL", &url)
        .env("TALLY_METRICS_ADDR", &addr.to_string())
        .config_file("[aggregates.daily_event_counts]\nevery = \"1s\"\n")
        .spawn();
    wait_for_metric_within(addr, EVENT_COUNTS_OK, 1.0, Duration::from_secs(60)).await;
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    let owner: String =
        sqlx::query_scalar("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'reporting'")
            .fetch_one(&sqlx::PgPool::connect(cluster.url().with_database("marketing").expose()).await.unwrap())
            .await
            .unwrap();
    assert_eq!(owner, "worker", "tally's schemas belong to its role, nothing else was granted");
    admin.close().await;
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn hostile_values_are_stored_as_data_and_never_executed() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    let hostile = [
        "'; DROP TABLE marketing.events; --",
        "Robert'); DROP TABLE marketing.leads;--",
        "$$; SELECT pg_sleep(30); $$",
        "\\x00\\N\ttab\nnewline",
        "\"quoted\" \\ backslash",
        "ünïcødé 🚀 kampagne",
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.ndjson");
    let mut lines = Vec::new();
    for (i, name) in hostile.iter().enumerate() {
        lines.push(serde_json::json!({
            "_id": format!("h{i}"), "userId": format!("u{i}"), "event": name, "timestamp": "2026-11-20T10:00:00Z",
            "properties": {"utm_source": name, "utm_campaign": name, "revenue": 1}
        }));
    }
    // A huge document (a 2 MB string) and a deeply nested one.
    lines.push(serde_json::json!({"_id": "huge", "event": "page_view", "timestamp": "2026-11-20T10:00:00Z",
        "properties": {"blob": "x".repeat(2 << 20)}}));
    let mut nested = serde_json::json!({"leaf": true});
    for _ in 0..100 {
        nested = serde_json::json!({ "n": nested });
    }
    lines.push(serde_json::json!({"_id": "deep", "event": "page_view", "timestamp": "2026-11-20T10:00:00Z", "properties": nested}));
    let mut text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
    text.push_str("{\"_id\":\"nul\",\"event\":\"page\\u0000view\",\"timestamp\":\"2026-11-20T10:00:00Z\"}\n");
    std::fs::write(&path, text).unwrap();

    let out = tally(&["ingest", path.to_str().unwrap(), "--max-line-bytes", "4194304", "--allow-rejects"])
        .database(&db.url)
        .output()
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("NUL"), "the NUL line is rejected with its reason: {}", out.stderr);
    for (i, name) in hostile.iter().enumerate() {
        let (event, source, campaign): (String, String, String) =
            sqlx::query_as("SELECT event, utm_source, utm_campaign FROM marketing.events WHERE event_id = $1")
                .bind(format!("h{i}"))
                .fetch_one(&db.pool)
                .await
                .unwrap();
        assert_eq!((event.as_str(), source.as_str(), campaign.as_str()), (*name, *name, *name));
    }
    let blob: i32 =
        sqlx::query_scalar("SELECT length(properties->>'blob') FROM marketing.events WHERE event_id = 'huge'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(blob, 2 << 20);
    let depth: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT (properties{}->>'leaf')::bool FROM marketing.events WHERE event_id = 'deep'",
        "->'n'".repeat(100)
    )))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(depth, Some(true));

    // Through the aggregates, as data, to the dashboards' schema.
    let refresh = tally(&["refresh"]).database(&db.url).output().await;
    assert_eq!(refresh.code, Some(0), "{refresh:?}");
    for name in hostile {
        let rows: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM reporting.daily_campaign_metrics WHERE utm_source = $1 AND utm_campaign = $1",
        )
        .bind(name)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(rows, 1, "{name:?}");
    }
    let intact: bool = sqlx::query_scalar(
        "SELECT to_regclass('marketing.events') IS NOT NULL AND to_regclass('marketing.leads') IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(intact, "no statement in the data ran");
}

#[tokio::test]
async fn the_worker_never_logs_the_password_in_text_or_json_logs() {
    let db = TestDb::migrated().await;
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_password(Some("Hunter2-s3cret")).unwrap();
    for format in ["text", "json"] {
        let addr = free_addr();
        let mut worker = tally(&["run"])
            .env("DATABASE_URL", url.as_str())
            .env("TALLY_METRICS_ADDR", &addr.to_string())
            .env("TALLY_LOG_FORMAT", format)
            .env("RUST_LOG", "debug")
            .config_file(
                "[aggregates.daily_event_counts]\nevery = \"1s\"\n[aggregates.daily_lead_funnel]\nenabled = false\n",
            )
            .spawn();
        wait_for_metric_within(addr, EVENT_COUNTS_OK, 1.0, Duration::from_secs(60)).await;
        let (_, metrics) = http_get(addr, "/metrics").await.unwrap();
        let (_, ready) = http_get(addr, "/readyz").await.unwrap();
        worker.signal(Signal::SIGTERM);
        assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0));
        let log = worker.log();
        assert!(log.contains(":***@"), "{format}: the URL is logged, redacted:\n{log}");
        for text in [&log, &metrics, &ready] {
            assert!(!text.contains("Hunter2-s3cret"), "{format}: the password leaked:\n{text}");
        }
    }
}

#[tokio::test]
async fn metrics_listen_on_loopback_unless_told_otherwise() {
    let db = TestDb::migrated().await;
    // No TALLY_METRICS_ADDR (the harness removes it): the default address.
    let mut worker = tally(&["run"]).database(&db.url).spawn();
    worker.wait_for_log("serving /metrics, /healthz and /readyz", Duration::from_secs(30)).await;
    assert!(worker.log().contains("address=127.0.0.1:9755"), "{}", worker.log());
    let addr: std::net::SocketAddr = tally::commands::DEFAULT_METRICS_ADDR.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert_eq!(http_get(addr, "/healthz").await.map(|(s, _)| s), Some(200));
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
}

/// An application role that may only write the marketing tables keeps
/// writing them in incremental mode: the invalidation triggers run as
/// tally's role. It still can neither read nor write anything in `tally`.
#[tokio::test]
async fn applications_write_in_incremental_mode_with_no_right_in_tally() {
    let db = TestDb::migrated().await;
    let pool = &db.pool;
    create_months(pool).await;
    let config = crate::harness::config(&format!("attribution_lookback_days = 20\n{}", crate::live::DAILY_INCREMENTAL));
    crate::harness::refresh_all(pool, &config).await;
    let role = format!("app_{}", std::process::id());
    let setup = format!(
        "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN;
         GRANT USAGE ON SCHEMA marketing TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON marketing.events, marketing.leads, marketing.conversions,
               marketing.campaign_spend TO {role};"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(setup)).execute(pool).await.unwrap();
    let mut app = pool.begin().await.unwrap();
    let writes = format!(
        "SET LOCAL ROLE {role};
         INSERT INTO marketing.events (user_id, event, utm_source, utm_campaign, occurred_at)
             VALUES ('ann', 'page_view', 'google', 'brand', '2026-11-10 09:00+00');
         INSERT INTO marketing.events (user_id, event, utm_source, occurred_at)
             SELECT 'bob', 'page_view', 'google', timestamptz '2026-11-11 00:00+00' + g * interval '1 minute'
             FROM generate_series(1, 100) AS g;
         UPDATE marketing.events SET utm_campaign = 'spring' WHERE user_id = 'ann';
         DELETE FROM marketing.events WHERE user_id = 'bob';
         INSERT INTO marketing.leads (email, user_id, source) VALUES ('ann@example.com', 'ann', 'google');
         UPDATE marketing.leads SET user_id = 'ann2' WHERE email = 'ann@example.com';
         INSERT INTO marketing.conversions (lead_id, kind, revenue, occurred_at)
             SELECT id, 'purchase', 10, '2026-11-12 10:00+00' FROM marketing.leads;
         INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend) VALUES ('2026-11-10', 'google', 'brand', 5);"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(writes)).execute(&mut *app).await.expect("writes as the application role");
    app.commit().await.unwrap();
    let mut app = pool.begin().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET LOCAL ROLE {role}"))).execute(&mut *app).await.unwrap();
    let planted = sqlx::query("INSERT INTO tally.invalidations (aggregate, kind) VALUES ('daily_attribution', 'all')")
        .execute(&mut *app)
        .await
        .expect_err("the application role cannot write marks");
    assert!(planted.to_string().contains("permission denied for schema tally"), "{planted}");
    app.rollback().await.unwrap();
    let marks = crate::harness::count(pool, "SELECT count(*) FROM tally.invalidations").await;
    assert!(marks > 0, "the application's write left its marks");
    crate::harness::refresh_all(pool, &config).await;
    crate::harness::assert_matches_scratch(pool, &config, "after the application's writes").await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP OWNED BY {role}; DROP ROLE {role};"))).execute(pool).await.unwrap();
}
