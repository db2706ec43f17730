//! Start-up and shutdown as an on-call engineer meets them: refusals that
//! waiting cannot cure said at once, `/readyz` green only when every
//! documented series is on `/metrics`, a host name for the metrics address,
//! a second Ctrl-C that stops at once.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tally::db::EphemeralCluster;

use crate::harness::{
    FAST, TestDb, free_addr, http_get, insert_sample_events, metric, metrics, ready, start_worker, tally, wait_until,
};

#[tokio::test]
async fn a_missing_database_or_role_or_a_wrong_password_fails_at_once_with_the_servers_reason() {
    let cluster = tokio::task::spawn_blocking(EphemeralCluster::start).await.unwrap().unwrap();
    let admin = sqlx::PgPool::connect(cluster.url().expose()).await.unwrap();
    sqlx::query("CREATE ROLE pwuser LOGIN PASSWORD 'right-one'").execute(&admin).await.unwrap();
    // Password authentication for that role (the cluster trusts everyone else).
    let hba = cluster.dir().join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("host all pwuser 127.0.0.1/32 scram-sha-256\n{rules}")).unwrap();
    sqlx::query("SELECT pg_reload_conf()").execute(&admin).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let port = cluster.port();
    for (url, sqlstate, hint) in [
        (format!("postgres://postgres@127.0.0.1:{port}/no_such_db"), "3D000", "create the database"),
        (format!("postgres://no_such_role@127.0.0.1:{port}/postgres"), "28000", "check the user"),
        (format!("postgres://pwuser:wrong-one@127.0.0.1:{port}/postgres"), "28P01", "check the password"),
    ] {
        let started = Instant::now();
        let out = tally(&["status"])
            .env("DATABASE_URL", &url)
            .config_file("[database]\nconnect_timeout = \"60s\"\n")
            .output()
            .await;
        assert_eq!(out.code, Some(1), "{url}: {out:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{url}: not retried for the connect timeout");
        assert!(out.stderr.contains(&format!("SQLSTATE {sqlstate}")), "{url}: {}", out.stderr);
        assert!(out.stderr.contains("refused tally's connection") && out.stderr.contains(hint), "{}", out.stderr);
        assert!(!out.stderr.contains("check that the server is running"), "{}", out.stderr);
        assert!(!out.stderr.contains("wrong-one"), "{}", out.stderr);
    }

    // The worker keeps trying, says why each time and on /readyz, and
    // starts once the database exists.
    let url = format!("postgres://postgres@127.0.0.1:{port}/created_later").parse().unwrap();
    let (mut worker, addr) = start_worker(&url, FAST);
    worker.wait_for_log("PostgreSQL refused the connection; retrying", Duration::from_secs(20)).await;
    let (status, body) = http_get(addr, "/readyz").await.unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("does not exist") && body.contains("3D000"), "{body}");
    sqlx::query("CREATE DATABASE created_later").execute(&admin).await.unwrap();
    assert!(wait_until(Duration::from_secs(60), || async { ready(addr).await == Some(200) }).await, "{}", worker.log());
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    admin.close().await;
    let mut cluster = cluster;
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}

#[tokio::test]
async fn readyz_turns_200_only_when_every_documented_series_is_there() {
    let db = TestDb::migrated().await;
    let toml = format!(
        "[partitions]\nextra_tables = [\"marketing.ad_clicks\"]\n{}\n[aggregates.daily_event_counts]\nmode = \"incremental\"\nevery = \"1s\"\n",
        FAST.replace("[aggregates.daily_event_counts]\nevery = \"1s\"\n", "")
    );
    // Partition maintenance waits for this lock for a while: the start-up
    // is slow, as on a busy database, and /readyz must say so meanwhile.
    let lock = db.lock_events().await;
    let (mut worker, addr) = start_worker(&db.url, &toml);
    let starting = wait_until(Duration::from_secs(30), || async {
        http_get(addr, "/readyz").await.is_some_and(|(status, body)| status == 503 && body.contains("starting"))
    })
    .await;
    assert!(starting, "{}", worker.log());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ready(addr).await, Some(503), "not ready while partitions are checked");
    drop(lock);
    // Poll as fast as a probe may: the first 200 is what counts.
    let started = Instant::now();
    let text = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "never ready: {}", worker.log());
        if ready(addr).await == Some(200) {
            break metrics(addr).await;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    for aggregate in ["daily_campaign_metrics", "daily_event_counts"] {
        let label = format!("{{aggregate=\"{aggregate}\"}}");
        for name in [
            "tally_refresh_last_success_timestamp_seconds",
            "tally_aggregate_rows",
            "tally_aggregate_staleness_seconds",
            "tally_refresh_failures_total",
        ] {
            assert!(metric(&text, &format!("{name}{label}")).is_some(), "{name}{label} missing at first 200:\n{text}");
        }
        for outcome in ["success", "failure", "skipped_running", "locked_elsewhere"] {
            let series = format!("tally_refreshes_total{{aggregate=\"{aggregate}\",outcome=\"{outcome}\"}}");
            assert!(metric(&text, &series).is_some(), "{series} missing:\n{text}");
        }
    }
    assert!(metric(&text, "tally_invalidated_days{aggregate=\"daily_event_counts\"}").is_some(), "{text}");
    for table in ["marketing.events", "marketing.ad_clicks"] {
        for name in ["tally_partitions", "tally_partition_future_months", "tally_default_partition_rows"] {
            let series = format!("{name}{{table=\"{table}\"}}");
            assert!(metric(&text, &series).is_some(), "{series} missing at first 200:\n{text}");
        }
    }
    // marketing.ad_clicks does not exist: nothing to see, and the alerts on it fire.
    assert_eq!(metric(&text, "tally_partition_future_months{table=\"marketing.ad_clicks\"}"), Some(0.0));
    assert_eq!(metric(&text, "tally_partition_future_months{table=\"marketing.events\"}"), Some(3.0));
    for outcome in ["loaded", "duplicate", "rejected"] {
        assert!(metric(&text, &format!("tally_ingest_rows_total{{outcome=\"{outcome}\"}}")).is_some());
    }
    assert!(!text.contains(" inf\n"), "infinity is written +Inf:\n{text}");
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
}

#[tokio::test]
async fn the_metrics_address_may_be_a_host_name() {
    let db = TestDb::migrated().await;
    let port = free_addr().port();
    let addr = format!("localhost:{port}");
    let mut worker = tally(&["run"]).database(&db.url).env("TALLY_METRICS_ADDR", &addr).config_file(FAST).spawn();
    worker.wait_for_log("worker running", Duration::from_secs(30)).await;
    let check = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", &addr).output().await;
    assert_eq!(check.code, Some(0), "{check:?}");
    let bad = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", "localhost").output().await;
    assert_eq!(bad.code, Some(2), "{bad:?}");
    assert!(bad.stderr.contains("TALLY_METRICS_ADDR") && bad.stderr.contains("HOST:PORT"), "{}", bad.stderr);
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
}

#[tokio::test]
async fn a_second_signal_during_the_grace_period_stops_at_once_and_the_server_cancels_the_refresh() {
    let db = TestDb::migrated().await;
    let toml = format!("[database]\nlock_timeout = \"120s\"\n[refresh]\nshutdown_grace = \"120s\"\n{FAST}");
    let (mut worker, addr) = start_worker(&db.url, &toml);
    assert!(wait_until(Duration::from_secs(30), || async { ready(addr).await == Some(200) }).await);
    insert_sample_events(&db.pool).await;
    let lock = db.lock_events().await;
    assert!(wait_until(Duration::from_secs(20), || async { db.sessions_waiting_for_locks().await >= 1 }).await);

    worker.signal(Signal::SIGINT);
    worker.wait_for_log("waiting for 1 running refresh to finish", Duration::from_secs(10)).await;
    assert!(worker.child.try_wait().unwrap().is_none(), "the first signal waits for the refresh");
    worker.signal(Signal::SIGINT);
    let code = worker.wait(Duration::from_secs(10)).await;
    assert_eq!(code, Some(130), "{}", worker.log());
    assert_eq!(worker.log().matches("waiting for 1 running refresh").count(), 1, "said once: {}", worker.log());
    // Its statement, left waiting on the lock, is cancelled by the server.
    let gone = wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await == 0 }).await;
    assert!(gone, "the abandoned refresh still waits on the server");
    drop(lock);
}

#[tokio::test]
async fn messages_say_what_they_mean() {
    let db = TestDb::migrated().await;
    let first = tally(&["refresh", "daily_lead_funnel"]).database(&db.url).output().await;
    assert!(first.stdout.contains("daily_lead_funnel: refreshed (built, 0 rows"), "{first:?}");
    let again = tally(&["refresh", "daily_lead_funnel"]).database(&db.url).output().await;
    assert!(again.stdout.contains("daily_lead_funnel: refreshed (concurrently, 0 rows"), "{again:?}");

    // A permanent failure is tried once, and says so in the singular.
    let lock = db.lock_events().await;
    let failed = tally(&["refresh", "daily_event_counts"])
        .database(&db.url)
        .config_file("[database]\nstatement_timeout = \"200ms\"\nlock_timeout = \"60s\"\n")
        .output()
        .await;
    assert_eq!(failed.code, Some(1), "{failed:?}");
    assert!(failed.stdout.contains("daily_event_counts: failed after 1 attempt: "), "{}", failed.stdout);
    drop(lock);

    // Months with a gap between them are not shown as one range.
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', '1999-12-15')")
        .execute(&db.pool)
        .await
        .unwrap();
    let partitions = tally(&["partitions"]).database(&db.url).output().await;
    assert_eq!(partitions.code, Some(0), "{partitions:?}");
    let status = tally(&["status"]).database(&db.url).output().await;
    let today = chrono::Utc::now().date_naive();
    let current = tally::partitions::Month::of(today);
    let expected = format!("5 monthly partitions (1999-12, {current} .. {})", current.plus(3));
    assert!(status.stdout.contains(&expected), "{expected}:\n{}", status.stdout);
}

#[tokio::test]
async fn a_second_demo_after_an_empty_one_loads_nothing_twice() {
    let db = TestDb::empty().await;
    let counts = || async {
        sqlx::query_as::<_, (i64, i64, i64)>(
            "SELECT (SELECT count(*) FROM marketing.leads), (SELECT count(*) FROM marketing.conversions),
                    (SELECT count(*) FROM marketing.campaign_spend)",
        )
        .fetch_one(&db.pool)
        .await
        .unwrap()
    };
    let mut after_each = Vec::new();
    for run in 0..2 {
        let out = tally(&["demo", "--once", "--events", "0", "--days", "7"])
            .database(&db.url)
            .env("TALLY_METRICS_ADDR", &free_addr().to_string())
            .output()
            .await;
        assert_eq!(out.code, Some(0), "run {run}: {out:?}");
        after_each.push(counts().await);
    }
    assert!(after_each[0].0 > 0 && after_each[0].2 > 0, "the first run loaded leads and spend: {after_each:?}");
    assert_eq!(after_each[0], after_each[1], "the second run loaded nothing");
}

#[tokio::test]
async fn history_and_data_no_clock_can_show_never_stop_the_worker_or_status() {
    let db = TestDb::migrated().await;
    // Rows no tally wrote: years past what a date in tally holds, infinities, a clock far ahead.
    sqlx::query(
        "INSERT INTO tally.refresh_runs (aggregate, mode, started_at, finished_at, outcome) VALUES
             ('daily_event_counts', 'incremental', '270000-01-01', '270000-01-01', 'success'),
             ('daily_event_counts', 'incremental', 'infinity', 'infinity', 'success'),
             ('daily_campaign_metrics', 'concurrently', '-infinity', '-infinity', 'failure'),
             ('daily_campaign_metrics', 'concurrently', '2100-01-01', '2100-01-01', 'success'),
             ('daily_lead_funnel', 'concurrently', now() - interval '1 hour', now() - interval '1 hour', 'success')",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO marketing.events (event, occurred_at) VALUES ('page_view', 'infinity')")
        .execute(&db.pool)
        .await
        .unwrap();
    let toml = format!(
        "{}\n[aggregates.daily_event_counts]\nmode = \"incremental\"\nevery = \"1s\"\n",
        FAST.replace("[aggregates.daily_event_counts]\nevery = \"1s\"\n", "")
    );
    let status = tally(&["status"]).database(&db.url).config_file(&toml).output().await;
    assert_eq!(status.code, Some(0), "{status:?}");
    let negative =
        status.stdout.lines().map(str::trim).any(|l| l.starts_with("staleness:    -") && l != "staleness:    -");
    assert!(!negative, "{}", status.stdout);

    let (mut worker, addr) = start_worker(&db.url, &toml);
    assert!(wait_until(Duration::from_secs(60), || async { ready(addr).await == Some(200) }).await, "{}", worker.log());
    let text = metrics(addr).await;
    assert!(metric(&text, "tally_invalidated_days{aggregate=\"daily_event_counts\"}").is_some(), "{text}");
    // The disabled aggregate's old success is not exported as a staleness that only grows.
    assert!(!text.contains("aggregate=\"daily_lead_funnel\""), "{text}");
    let staleness = metric(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_campaign_metrics\"}").unwrap();
    assert!(staleness.is_infinite() || staleness < 60.0, "the year-2100 row is not read back: {staleness}");
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
    assert!(!worker.log().contains("panicked"), "{}", worker.log());
}
