//! An index is called unused only once tally has watched it for
//! `--min-stats-age`: an index created after the statistics began is not
//! advised away at once; the worker records indexes at start-up; a role that
//! may only read tally's schema gets no drop of an index tally never saw.
//!
//! Nothing server-wide is touched (other tests share the server): the
//! statistics window of a fresh database is seconds old, so these tests use
//! a threshold of seconds and wait it out; an older index is simulated with
//! a backdated sighting.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use sqlx::{AssertSqlSafe, PgPool};

use super::audit::read_and_flush;
use crate::harness::{TestDb, server_url, start_worker, tally};

/// `--min-stats-age` of these tests: the fresh database is made older than it.
const THRESHOLD: &str = "2s";

/// marketing.audited, read by id only, with two indexes no query uses:
/// `audited_old_idx`, first seen by tally two hours ago (a backdated
/// sighting), and `audited_new_idx`, created once the database's statistics
/// are older than [`THRESHOLD`] and never seen by tally.
async fn old_and_new_unused_indexes(db: &TestDb) {
    sqlx::raw_sql(
        "CREATE TABLE marketing.audited (id bigint PRIMARY KEY, note text, impressions bigint);
         INSERT INTO marketing.audited SELECT g, 'n' || g, g % 100 FROM generate_series(1, 2000) AS g;
         CREATE INDEX audited_old_idx ON marketing.audited (note);
         INSERT INTO tally.index_sightings (index_oid, index_name, first_seen, at_install)
         VALUES ('marketing.audited_old_idx'::regclass, 'marketing.audited_old_idx', now() - interval '2 hours', false);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    // The database (and tally's installation in it) is now older than THRESHOLD.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    sqlx::query("CREATE INDEX audited_new_idx ON marketing.audited (impressions)").execute(&db.pool).await.unwrap();
    read_and_flush(db, &["SELECT count(*) FROM marketing.audited WHERE id = 7"]).await;
}

fn finding<'a>(report: &'a Value, index: &str) -> Option<&'a Value> {
    report["findings"].as_array().unwrap().iter().find(|f| f["index"] == index)
}

fn unscanned<'a>(report: &'a Value, index: &str) -> &'a Value {
    let all = report["unscanned"].as_array().unwrap();
    all.iter().find(|u| u["index"] == index).unwrap_or_else(|| panic!("{index} in {report:#}"))
}

async fn doctor_json(url: &tally::db::DatabaseUrl) -> Value {
    let out = tally(&["doctor", "--json", "--min-stats-age", THRESHOLD]).database(url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[tokio::test]
async fn an_index_created_after_the_statistics_began_is_held_back_until_watched_long_enough() {
    let db = TestDb::migrated().await;
    old_and_new_unused_indexes(&db).await;

    let report = doctor_json(&db.url).await;
    // The database's statistics are old enough: nothing is held back for them.
    assert_eq!(
        (report["unused_held_back"].as_bool(), report["index_sightings"].as_str()),
        (Some(false), Some("recorded"))
    );
    let old = finding(&report, "marketing.audited_old_idx").unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(old["kind"], "unused_index");
    // Seen before this database's statistics began: the statistics' window counts.
    assert!(old["problem"].as_str().unwrap().contains("(when this database was created)"), "{old:#}");
    assert_eq!(unscanned(&report, "marketing.audited_old_idx")["watched_from"], "statistics");
    assert_eq!(old["sql"][0], "DROP INDEX CONCURRENTLY IF EXISTS marketing.audited_old_idx;");
    // The new one has had no time to be used: no advice, and the report says why.
    assert!(finding(&report, "marketing.audited_new_idx").is_none(), "{report:#}");
    let new = unscanned(&report, "marketing.audited_new_idx");
    assert_eq!((new["held_back"].as_bool(), new["at_install"].as_bool()), (Some(true), Some(false)), "{new:#}");
    assert!(new["first_seen"].is_string() && new["watched_seconds"].as_u64().is_some_and(|s| s < 2), "{new:#}");
    assert_eq!(new["watched_from"], "first_seen");
    assert_eq!(unscanned(&report, "marketing.audited_old_idx")["held_back"], false);
    assert_eq!((report["unscanned_indexes"].as_u64(), report["indexes_held_back"].as_u64()), (Some(2), Some(1)));

    // The doctor recorded it: its first sighting does not move at the next run.
    let first_seen = new["first_seen"].clone();
    let out = tally(&["doctor", "--min-stats-age", THRESHOLD]).database(&db.url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "Not judged yet: 1 of your indexes had no index scan, but tally has watched it for less than \
         --min-stats-age (2 seconds)",
        "  marketing.audited_new_idx: first seen by tally at ",
        "[unused_index] marketing.audited_old_idx",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("DROP INDEX CONCURRENTLY IF EXISTS marketing.audited_new_idx"), "{}", out.stdout);
    // Once watched for the threshold, it is judged like any other.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let report = doctor_json(&db.url).await;
    assert_eq!(unscanned(&report, "marketing.audited_new_idx")["first_seen"], first_seen);
    let judged = finding(&report, "marketing.audited_new_idx").unwrap_or_else(|| panic!("{report:#}"));
    assert!(judged["problem"].as_str().unwrap().contains("(when tally first saw it)"), "{judged:#}");
}

#[tokio::test]
async fn the_worker_records_new_indexes_and_forgets_dropped_ones_at_start_up() {
    let db = TestDb::migrated().await;
    let recorded = |name: &'static str| {
        let pool = db.pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>("SELECT at_install FROM tally.index_sightings WHERE index_name = $1")
                .bind(name)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };
    // The migration recorded what existed when it ran (tally's own indexes among them).
    assert_eq!(recorded("marketing.events_occurred_at_idx").await, Some(true));
    sqlx::raw_sql(
        "CREATE INDEX leads_score_idx ON marketing.leads (score);
         INSERT INTO tally.index_sightings (index_oid, index_name, at_install) VALUES (1, 'marketing.long_gone_idx', false);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    assert_eq!(recorded("marketing.leads_score_idx").await, None);

    let (mut worker, _addr) = start_worker(&db.url, "");
    worker.wait_for_log("worker running", Duration::from_secs(60)).await;
    assert_eq!(recorded("marketing.leads_score_idx").await, Some(false), "{}", worker.log());
    assert_eq!(recorded("marketing.long_gone_idx").await, None, "a dropped index is forgotten");
    let first_seen_age: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - first_seen)::float8 FROM tally.index_sightings
         WHERE index_name = 'marketing.leads_score_idx'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!((0.0..120.0).contains(&first_seen_age), "{first_seen_age}");
    worker.signal(Signal::SIGTERM);
    assert_eq!(worker.wait(Duration::from_secs(30)).await, Some(0), "{}", worker.log());
}

/// A login role, removed (with its grants) when dropped: roles are
/// cluster-wide, and this one must not outlive its test.
struct Role {
    name: String,
    db: String,
}

impl Role {
    async fn create(db: &TestDb, grants: &str) -> Role {
        let name = format!("tally_test_reader_{}_{}", std::process::id(), db.name.rsplit('_').next().unwrap_or(""));
        let admin = PgPool::connect(server_url().expose()).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE ROLE {name} LOGIN"))).execute(&admin).await.unwrap();
        admin.close().await;
        // Built before the grants, so that it is removed even if they fail.
        let role = Role { name, db: db.name.clone() };
        let grants = grants.replace("{role}", &role.name).replace("{db}", &db.name);
        sqlx::raw_sql(AssertSqlSafe(grants)).execute(&db.pool).await.unwrap();
        role
    }

    fn url(&self, db: &TestDb) -> tally::db::DatabaseUrl {
        let mut url = url::Url::parse(db.url.expose()).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(None).unwrap();
        url.as_str().parse().unwrap()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let (name, db) = (self.name.clone(), self.db.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let in_db = PgPool::connect(server_url().with_database(&db).expose()).await.ok()?;
                let _ = sqlx::query(AssertSqlSafe(format!("DROP OWNED BY {name}"))).execute(&in_db).await;
                in_db.close().await;
                let admin = PgPool::connect(server_url().expose()).await.ok()?;
                sqlx::query(AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}"))).execute(&admin).await.ok()
            })
        })
        .join();
    }
}

#[tokio::test]
async fn a_role_that_may_only_read_gets_no_drop_of_an_index_tally_never_saw() {
    let db = TestDb::migrated().await;
    // Read access to what the doctor reads, nothing more: not pg_stat_file,
    // not INSERT on tally's schema.
    let role = Role::create(
        &db,
        "GRANT CONNECT ON DATABASE {db} TO {role};
         GRANT USAGE ON SCHEMA tally TO {role};
         GRANT SELECT ON tally.index_sightings, tally._sqlx_migrations TO {role};",
    )
    .await;
    old_and_new_unused_indexes(&db).await;

    let report = doctor_json(&role.url(&db)).await;
    assert_eq!(report["index_sightings"], "not_recorded", "{report:#}");
    assert!(report["index_sightings_problem"].as_str().unwrap().contains("permission denied"), "{report:#}");
    // The database's creation is not readable: tally's installation bounds the window instead.
    assert_eq!(report["stats_since_source"], "tally_installed", "{report:#}");
    assert!(report["stats_age_seconds"].as_u64().is_some_and(|age| age < 3_600), "{report:#}");
    assert_eq!(finding(&report, "marketing.audited_old_idx").map(|f| &f["kind"]), Some(&"unused_index".into()));
    assert!(finding(&report, "marketing.audited_new_idx").is_none(), "never seen, never advised away: {report:#}");
    let new = unscanned(&report, "marketing.audited_new_idx");
    assert_eq!((new["held_back"].as_bool(), new["first_seen"].is_null()), (Some(true), true), "{new:#}");
    let out = tally(&["doctor", "--min-stats-age", THRESHOLD]).database(&role.url(&db)).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "Note: tally could not record the indexes it sees (permission denied",
        "  marketing.audited_new_idx: tally has no record of it",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }

    // Without even the record to read, no index is judged unused.
    sqlx::query(AssertSqlSafe(format!("REVOKE SELECT ON tally.index_sightings FROM {}", role.name)))
        .execute(&db.pool)
        .await
        .unwrap();
    let report = doctor_json(&role.url(&db)).await;
    assert_eq!(report["index_sightings"], "unreadable", "{report:#}");
    let unused: Vec<&Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == "unused_index").collect();
    assert!(unused.is_empty(), "{unused:#?}");
    assert_eq!(report["indexes_held_back"], 2, "{report:#}");
}

#[tokio::test]
async fn min_stats_age_is_bounded() {
    for args in [["doctor", "--min-stats-age", "18446744073709551615s"], ["explain", "--audit", "--min-stats-age=400d"]]
    {
        let out = tally(&args).output().await;
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains("longer than the limit of 366 days"), "{args:?}: {}", out.stderr);
    }
}
