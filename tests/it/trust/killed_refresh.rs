//! A refresh whose process is killed is cancelled by the server within
//! seconds (`client_connection_check_interval`), and a one-shot `tally
//! refresh` that finds the aggregate locked waits for the holder and then
//! refreshes, or fails with exit 1 naming it: never "skipped" with exit 0.

use std::time::Duration;

use nix::sys::signal::Signal;
use sqlx::Connection;
use tally::refresh::attempt::REFRESH_LOCK_CLASS;

use crate::harness::{TestDb, backend_pid, insert_sample_events, refresher, tally, wait_until};

/// Sessions tally has open on this database.
async fn tally_sessions(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tally'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

async fn campaign_rows(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_metrics").fetch_one(&db.pool).await.unwrap()
}

#[tokio::test]
async fn a_refresh_killed_mid_way_is_cancelled_by_the_server_and_the_next_one_refreshes() {
    let db = TestDb::migrated().await;
    // Long enough that, without the check, the orphan would outlive the test.
    let toml = "[database]\nlock_timeout = \"120s\"\n";
    let built = tally(&["refresh", "daily_campaign_metrics"]).database(&db.url).output().await;
    assert_eq!(built.code, Some(0), "{built:?}");
    assert_eq!(campaign_rows(&db).await, 0);
    insert_sample_events(&db.pool).await;

    // A long maintenance holds the events: the refresh starts, takes the
    // refresh lock, and waits inside REFRESH ... CONCURRENTLY. Then its
    // process dies.
    let maintenance = db.lock_events().await;
    let mut killed = tally(&["refresh", "daily_campaign_metrics"]).database(&db.url).config_file(toml).spawn();
    assert!(wait_until(Duration::from_secs(20), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    killed.signal(Signal::SIGKILL);
    killed.wait(Duration::from_secs(10)).await;

    // The server notices the vanished client and cancels the orphaned
    // statement even though the lock it waits for is still held.
    let gone = wait_until(Duration::from_secs(10), || async { tally_sessions(&db).await == 0 }).await;
    assert!(gone, "the orphaned refresh still runs on the server with nobody to report to");
    maintenance.rollback().await.unwrap();

    let next = tally(&["refresh", "daily_campaign_metrics"]).database(&db.url).output().await;
    assert_eq!(next.code, Some(0), "{next:?}");
    assert!(next.stdout.contains("daily_campaign_metrics: refreshed (concurrently, 3 rows"), "{}", next.stdout);
    assert_eq!(campaign_rows(&db).await, 3, "the aggregate is fresh, not left stale behind a green exit");
}

#[tokio::test]
async fn a_one_shot_refresh_waits_for_another_process_then_refreshes_or_fails_naming_it() {
    let db = TestDb::migrated().await;
    insert_sample_events(&db.pool).await;
    let holder_pool = db.another_pool().await;
    let mut holder = holder_pool.begin().await.unwrap();
    let holder_pid = backend_pid(&mut holder).await;
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext('daily_event_counts'))")
        .bind(REFRESH_LOCK_CLASS)
        .execute(&mut *holder)
        .await
        .unwrap();

    // Held for longer than --wait: exit 1, the holder named, nothing claimed.
    let busy = tally(&["refresh", "daily_event_counts", "--wait", "1s"]).database(&db.url).output().await;
    assert_eq!(busy.code, Some(1), "{busy:?}");
    assert!(busy.stdout.contains("daily_event_counts: not refreshed"), "{}", busy.stdout);
    assert!(busy.stderr.contains(&format!("backend pid {holder_pid}")), "{}", busy.stderr);
    assert!(busy.stderr.contains("--wait 1s"), "{}", busy.stderr);
    assert!(!busy.stdout.contains("refreshed ("), "{}", busy.stdout);

    // Released while it waits: it refreshes and exits 0.
    let waiting = tally(&["refresh", "daily_event_counts", "--wait", "60s"]).database(&db.url).spawn();
    let blocked = wait_until(Duration::from_secs(60), || async {
        db.lock_waits().await.iter().any(|w| w.wait_event == "advisory" && w.blocked_by.contains(&holder_pid))
    })
    .await;
    assert!(blocked, "the refresh waits for the holder's advisory lock: {}", waiting.log());
    holder.rollback().await.unwrap();
    let waited = waiting.child.wait_with_output();
    let waited = tokio::time::timeout(Duration::from_secs(60), waited).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&waited.stdout);
    assert_eq!(waited.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("daily_event_counts: refreshed (built, 4 rows"), "{stdout}");
}

#[tokio::test]
async fn a_refresh_with_nothing_to_do_costs_one_connection() {
    let db = TestDb::migrated().await;
    let toml = "[aggregates.daily_event_counts]\nmode = \"incremental\"\n";
    let first = tally(&["refresh", "daily_event_counts"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(first.code, Some(0), "{first:?}");
    // One session of the test's own, so that only tally's are counted.
    let mut observer = sqlx::PgConnection::connect(db.url.expose()).await.unwrap();
    for (config, name) in [(toml, "daily_event_counts"), ("", "daily_lead_funnel")] {
        let before = sessions(&mut observer).await;
        let out = tally(&["refresh", name]).database(&db.url).config_file(config).output().await;
        assert_eq!(out.code, Some(0), "{out:?}");
        // Sessions are counted as they start; give the statistics a moment.
        let mut after = sessions(&mut observer).await;
        for _ in 0..20 {
            if after > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = sessions(&mut observer).await;
        }
        assert_eq!(after - before, 1, "{name}: one connection for the whole command: {}", out.stdout);
    }
}

/// Sessions ever opened on the observer's database.
async fn sessions(observer: &mut sqlx::PgConnection) -> i64 {
    sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *observer).await.unwrap();
    sqlx::query_scalar("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(&mut *observer)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_server_that_stops_answering_mid_refresh_fails_the_attempt_instead_of_hanging() {
    let db = TestDb::migrated().await;
    let config = crate::harness::config(
        "[database]\nstatement_timeout = \"2s\"\nlock_timeout = \"60s\"\n[refresh]\nmax_attempts = 1\n",
    );
    let refresher = refresher(&db.pool, config);
    let lock = db.lock_events().await;
    let aggregate = tally::aggregates::find("daily_event_counts").unwrap();
    let refresh = tokio::spawn(async move { refresher.refresh(aggregate).await });
    // The refresh waits on the lock; its backend then stops answering, as a
    // server whose host vanished would (SIGSTOP: no timer of its fires).
    assert!(wait_until(Duration::from_secs(10), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    let pid: i32 = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let backend = nix::unistd::Pid::from_raw(pid);
    nix::sys::signal::kill(backend, Signal::SIGSTOP).unwrap();
    lock.rollback().await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), refresh).await;
    nix::sys::signal::kill(backend, Signal::SIGCONT).unwrap();
    let report = report.expect("the attempt gave up within its bound").unwrap().unwrap();
    assert_eq!(report.outcome, tally::refresh::RefreshOutcome::Failure);
    let error = report.error.unwrap_or_default();
    assert!(error.contains("did not answer within 6s"), "{error}");
}

#[tokio::test]
async fn a_refresh_killed_while_it_waits_for_another_leaves_nothing_behind_even_through_pgbouncer() {
    let db = TestDb::migrated().await;
    let holder_pool = db.another_pool().await;
    let mut holder = holder_pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext('daily_event_counts'))")
        .bind(REFRESH_LOCK_CLASS)
        .execute(&mut *holder)
        .await
        .unwrap();
    // pgbouncer = true: no startup options, so the check comes with the wait itself.
    let mut killed = tally(&["refresh", "daily_event_counts", "--wait", "10m"])
        .database(&db.url)
        .config_file("[database]\npgbouncer = true\n")
        .spawn();
    assert!(wait_until(Duration::from_secs(20), || async { db.sessions_waiting_for_locks().await >= 1 }).await);
    killed.signal(Signal::SIGKILL);
    killed.wait(Duration::from_secs(10)).await;
    let gone = wait_until(Duration::from_secs(10), || async { tally_sessions(&db).await == 0 }).await;
    assert!(gone, "the killed refresh still waits on the server");
    holder.rollback().await.unwrap();
}
