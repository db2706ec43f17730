//! Schema changes that never lock users out: tally's migrations pass squawk,
//! apply under concurrent writes without making a writer wait longer than
//! lock_timeout, give up (and repair later) rather than queue behind a long
//! transaction; and an aggregate whose definition changes is rebuilt beside
//! the old one and swapped in while dashboards read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sqlx::migrate::Migrator;
use tally::aggregates::RefreshKind;

use crate::harness::{
    Session, TestDb, Workload, backend_pid, config, create_months, index_state, is_lock_timeout, refresh_all, repo,
    tool,
};

fn migration_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(repo().join("sql/migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

#[test]
fn squawk_passes_every_migration_and_still_catches_unsafe_ones() {
    let Some(squawk) = tool("squawk") else { return };
    let config = repo().join(".squawk.toml");
    let out = std::process::Command::new(&squawk).arg("-c").arg(&config).args(migration_files()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // The configuration keeps the rules that matter: a blocking index build
    // and a validating foreign key are refused.
    let dir = tempfile::tempdir().unwrap();
    let unsafe_migration = dir.path().join("0099_unsafe.sql");
    std::fs::write(
        &unsafe_migration,
        "CREATE INDEX leads_source_idx ON marketing.leads (source);\n\
         ALTER TABLE marketing.conversions ADD CONSTRAINT conversions_lead_fk FOREIGN KEY (lead_id) REFERENCES marketing.leads (id);\n",
    )
    .unwrap();
    let out = std::process::Command::new(&squawk).arg("-c").arg(&config).arg(&unsafe_migration).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{report}");
    assert!(report.contains("require-concurrent-index-creation"), "{report}");
    assert!(report.contains("adding-foreign-key-constraint"), "{report}");
}

#[test]
fn concurrent_index_builds_live_alone_in_no_transaction_migrations() {
    for file in migration_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let no_transaction = text.starts_with("-- no-transaction");
        let code: Vec<&str> =
            text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("--")).collect::<Vec<_>>();
        let concurrent = code.iter().any(|l| l.contains("CONCURRENTLY"));
        assert_eq!(
            no_transaction,
            concurrent,
            "{}: CONCURRENTLY needs `-- no-transaction` and vice versa",
            file.display()
        );
        if no_transaction {
            // One statement, in the form tally's repair of an interrupted build re-runs.
            assert_eq!(code.len(), 1, "{}", file.display());
            assert!(code[0].starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS "), "{}", file.display());
        }
    }
}

/// A migrator holding the first `count` migrations (as an older tally had them).
async fn first_migrations(count: usize) -> (Migrator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for file in migration_files().into_iter().take(count) {
        std::fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();
    }
    let mut migrator = Migrator::new(dir.path()).await.unwrap();
    migrator.dangerous_set_table_name(tally::MIGRATOR.table_name.clone());
    migrator.create_schema("tally");
    (migrator, dir)
}

/// Inserts leads and events on `session` until stopped; returns how many.
/// The session's `lock_timeout` is the longest an insert may wait for a
/// lock: one held back longer fails, and with it the test.
fn writer(mut session: Session, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let mut inserts = 0u64;
        while !stop.load(Ordering::Relaxed) {
            sqlx::raw_sql(
                "INSERT INTO marketing.leads (email, source, created_at)
                 VALUES ('w' || gen_random_uuid() || '@example.com', 'google', now());
                 INSERT INTO marketing.events (event, user_id, occurred_at) VALUES ('page_view', 'u1', now());",
            )
            .execute(&mut session.conn)
            .await
            .unwrap_or_else(|e| match is_lock_timeout(&e) {
                true => panic!("an insert waited for a lock longer than lock_timeout: {e}"),
                false => panic!("every insert succeeds while migrations run: {e}"),
            });
            inserts += 1;
        }
        inserts
    })
}

#[tokio::test]
async fn migrations_under_insert_load_never_make_a_writer_wait_past_lock_timeout() {
    let db = TestDb::empty().await;
    // The tables the writers use exist (the first release), then every later
    // migration is applied while they insert.
    let (first, _dir) = first_migrations(3).await;
    first.run(&db.pool).await.unwrap();
    let current = tally::partitions::Month::of(chrono::Utc::now().date_naive());
    let events = tally::partitions::ManagedTable::events();
    tally::partitions::create_months(&db.pool, &config(""), &events, &[current, current.plus(1)]).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO marketing.leads (email, created_at)
         SELECT 'l' || g || '@example.com', now() - g * interval '1 minute' FROM generate_series(1, 50000) AS g",
    )
    .execute(&db.pool)
    .await
    .unwrap();

    // Writers wait for a lock at most the migrations' lock_timeout.
    let config = config("[database]\nlock_timeout = \"2s\"\n");
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..3 {
        load.push(writer(db.session_with_lock_timeout("2s").await, stop.clone()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tally::db::migrate(&db.pool, &db.url, &config.database).await.expect("migrations apply under load");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for writer in load {
        let inserts = writer.await.expect("no insert waited for a lock past lock_timeout");
        eprintln!("writer: {inserts} inserts");
        assert!(inserts > 0);
        total += inserts;
    }
    assert!(total > 10, "{total}");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM tally._sqlx_migrations WHERE success")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied as usize, migration_files().len());
    assert_eq!(index_state(&db.pool).await, Some(true));
}

#[tokio::test]
async fn a_migration_behind_a_long_transaction_gives_up_and_a_later_run_finishes_it() {
    let db = TestDb::empty().await;
    // Everything before the concurrent index build of migration 0008.
    let concurrent = migration_files()
        .iter()
        .position(|f| std::fs::read_to_string(f).unwrap().starts_with("-- no-transaction"))
        .unwrap();
    let (older, _dir) = first_migrations(concurrent).await;
    older.run(&db.pool).await.unwrap();
    sqlx::query("INSERT INTO marketing.leads (email) VALUES ('a@example.com')").execute(&db.pool).await.unwrap();

    // A report holding a snapshot open: a concurrent index build must wait for it.
    let reader_pool = db.another_pool().await;
    let mut reader = reader_pool.begin().await.unwrap();
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *reader).await.unwrap();
    sqlx::query("SELECT count(*) FROM marketing.leads").execute(&mut *reader).await.unwrap();
    let reader_pid = backend_pid(&mut reader).await;

    let config = config("[database]\nlock_timeout = \"300ms\"\n");
    let migrating = AtomicBool::new(true);
    let migrate = async {
        let result = tally::db::migrate(&db.pool, &db.url, &config.database).await;
        migrating.store(false, Ordering::Relaxed);
        result
    };
    // Writers are never blocked meanwhile: an insert goes through while the
    // build is seen waiting for the report, before and after it.
    let insert_while_the_build_waits = async {
        let mut writer = db.session_with_lock_timeout("1s").await;
        let build_waiting = || async {
            db.lock_waits().await.into_iter().find(|w| {
                w.query.contains("CREATE INDEX CONCURRENTLY")
                    && w.wait_event == "virtualxid"
                    && w.blocked_by.contains(&reader_pid)
            })
        };
        let mut seen = Vec::new();
        while migrating.load(Ordering::Relaxed) {
            if let Some(build) = build_waiting().await {
                if seen.last() != Some(&build.pid) {
                    seen.push(build.pid);
                }
                sqlx::query("INSERT INTO marketing.leads (email) VALUES ('b' || gen_random_uuid() || '@example.com')")
                    .execute(&mut writer.conn)
                    .await
                    .expect("an insert while the build waits succeeds");
                if build_waiting().await.is_some_and(|still| still.pid == build.pid) {
                    return Ok(build.pid);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(seen)
    };
    let (failed, meanwhile) = tokio::join!(migrate, insert_while_the_build_waits);
    let message = failed.expect_err("gives up").to_string();
    assert!(message.contains("lock timeout"), "{message}");
    assert!(
        meanwhile.is_ok(),
        "no insert completed within one wait of the build for the report (waits seen, by pid): {meanwhile:?}"
    );
    assert_ne!(index_state(&db.pool).await, Some(true), "the build did not finish");

    reader.rollback().await.unwrap();
    tally::db::migrate(&db.pool, &db.url, &config.database).await.expect("the next run finishes the build");
    assert_eq!(index_state(&db.pool).await, Some(true));
    let invalid: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetch_one(&db.pool).await.unwrap();
    assert_eq!(invalid, 0);
}

#[tokio::test]
async fn a_changed_aggregate_definition_is_built_beside_and_swapped_in_while_dashboards_read() {
    let db = TestDb::migrated().await;
    create_months(&db.pool).await;
    Workload::new(21).apply(&db.pool, 80, false).await;
    refresh_all(&db.pool, &config("")).await;
    let rows = |sql: &'static str| {
        let pool = db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.unwrap() }
    };
    assert!(rows("SELECT count(*) FROM reporting.daily_campaign_metrics").await > 0);

    // Dashboards poll the rollup and the view over it during the change.
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [
        "SELECT count(*) FROM reporting.daily_campaign_metrics",
        "SELECT count(*) FROM reporting.campaign_performance",
    ]
    .into_iter()
    .map(|sql| {
        let (pool, stop) = (db.pool.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut reads, mut slowest) = (0u64, Duration::ZERO);
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.expect("the relation is always there");
                assert!(n > 0, "{sql} never reads an empty relation");
                slowest = slowest.max(started.elapsed());
                reads += 1;
            }
            (reads, slowest)
        })
    })
    .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Another reporting time zone changes every day boundary: a new definition.
    let changed = config("reporting_timezone = \"America/New_York\"\n");
    let refreshed = refresh_all(&db.pool, &changed).await;
    let campaign = refreshed.iter().find(|(name, _, _)| name == "daily_campaign_metrics").unwrap();
    assert_eq!(campaign.1, RefreshKind::Rebuilt, "{refreshed:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        let (reads, slowest) = reader.await.unwrap();
        eprintln!("reader: {reads} reads, slowest {slowest:?}");
        assert!(reads > 0);
    }
    // The new definition is what is there now, and nothing was left behind.
    let again = refresh_all(&db.pool, &changed).await;
    assert!(again.iter().all(|(_, kind, _)| *kind != RefreshKind::Rebuilt), "rebuilt once: {again:?}");
    let leftovers = rows("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_rebuild%'").await;
    assert_eq!(leftovers, 0);
}

#[tokio::test]
async fn bookkeeping_left_in_public_by_an_older_tally_is_moved_not_replayed() {
    let db = TestDb::migrated().await;
    // As an older tally left it.
    sqlx::query("ALTER TABLE tally._sqlx_migrations SET SCHEMA public").execute(&db.pool).await.unwrap();
    tally::db::migrate(&db.pool, &db.url, &config("").database).await.expect("nothing is applied twice");
    let (in_tally, in_public): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('tally._sqlx_migrations') IS NOT NULL, to_regclass('public._sqlx_migrations') IS NOT NULL",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((in_tally, in_public), (true, false));
}

#[tokio::test]
async fn another_applications_sqlx_bookkeeping_in_public_is_left_alone() {
    let db = TestDb::empty().await;
    sqlx::raw_sql(
        "CREATE SCHEMA tally;
         CREATE TABLE public._sqlx_migrations (version bigint PRIMARY KEY, checksum bytea NOT NULL);
         INSERT INTO public._sqlx_migrations VALUES (1, '\\x00'), (2, '\\x01');",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    tally::db::migrate(&db.pool, &db.url, &config("").database).await.expect("tally's own migrations apply");
    let theirs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public._sqlx_migrations").fetch_one(&db.pool).await.unwrap();
    let ours: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tally._sqlx_migrations").fetch_one(&db.pool).await.unwrap();
    assert_eq!((theirs, ours as usize), (2, migration_files().len()));
}
