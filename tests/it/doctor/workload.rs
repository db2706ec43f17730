//! `tally doctor --workload` on a throwaway cluster that loads
//! pg_stat_statements: a handful of known slow statements run many times,
//! and the plan covers them with one composite where one serves two, spares
//! a write-heavy table the index a read-only one gets for the same reads,
//! and names the existing index a proposal makes redundant. Without
//! pg_stat_statements it says how to load it, and exits 2.

use sqlx::{AssertSqlSafe, PgPool};
use tally::doctor::workload::{WorkloadOptions, run};

use crate::harness::{TestDb, tally};

/// `name`: 60,000 rows, `a` in 0..599 (100 rows each), `b` spread.
async fn table(conn: &mut sqlx::PgConnection, name: &str) {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE {name} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a int, b int, note text);
         INSERT INTO {name} (a, b, note) SELECT g % 600, (g * 37) % 100000, repeat('x', 40) FROM generate_series(1, 60000) AS g;
         ANALYZE {name};"
    )))
    .execute(conn)
    .await
    .unwrap();
}

/// Makes `conn`'s table counters visible in pg_stat_user_tables now (a
/// session flushes them when idle, up to seconds later).
async fn flush_counters(conn: &mut sqlx::PgConnection) {
    sqlx::raw_sql("SELECT pg_stat_force_next_flush()").execute(&mut *conn).await.unwrap();
    sqlx::raw_sql("SELECT 1").execute(&mut *conn).await.unwrap();
}

#[tokio::test]
async fn one_composite_serves_two_statements_and_a_write_heavy_table_is_spared() {
    let cluster = tokio::task::spawn_blocking(|| {
        tally::db::EphemeralCluster::start_with(&[("shared_preload_libraries", "pg_stat_statements")])
    })
    .await
    .unwrap()
    .expect("a throwaway cluster loading pg_stat_statements");
    let url = cluster.url();
    let pool = PgPool::connect(url.expose()).await.unwrap();
    let mut setup = pool.acquire().await.unwrap();
    for name in ["quiet", "busy", "legacy"] {
        table(&mut setup, name).await;
    }
    sqlx::raw_sql("CREATE INDEX legacy_a_idx ON legacy (a); CREATE EXTENSION pg_stat_statements;")
        .execute(&mut *setup)
        .await
        .unwrap();
    // The loading does not count as writes: one period, from here, for the
    // statements' times and the tables' writes.
    flush_counters(&mut setup).await;
    sqlx::raw_sql("SELECT pg_stat_reset(); SELECT pg_stat_statements_reset();").execute(&mut *setup).await.unwrap();
    drop(setup);
    // busy: 400,000 rows written (and taken away again, so reads cost the same as on quiet).
    let mut writer = pool.acquire().await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO busy (a, b, note) SELECT -1, g, 'y' FROM generate_series(1, 400000) AS g;
         DELETE FROM busy WHERE a = -1;",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    sqlx::raw_sql("VACUUM ANALYZE busy").execute(&mut *writer).await.unwrap();
    flush_counters(&mut writer).await;
    drop(writer);
    for round in 0..25 {
        for name in ["quiet", "busy"] {
            let one = format!("SELECT * FROM {name} WHERE a = $1");
            let latest = format!("SELECT id, b FROM {name} WHERE a = $1 ORDER BY b DESC LIMIT 5");
            for sql in [one, latest] {
                sqlx::query(AssertSqlSafe(sql)).bind(round * 7).fetch_all(&pool).await.unwrap();
            }
        }
        sqlx::query("SELECT id FROM legacy WHERE a = $1 ORDER BY b LIMIT 10")
            .bind(round)
            .fetch_all(&pool)
            .await
            .unwrap();
    }

    let report = run(&pool, &WorkloadOptions { top: 10, min_cost_cut: 0.5 }).await.unwrap();
    let on = |table: &str| {
        report.proposals.iter().filter(|p| p.index.starts_with(&format!("public.{table} "))).collect::<Vec<_>>()
    };
    let quiet = on("quiet");
    assert_eq!(quiet.len(), 1, "one index for quiet's two statements: {report:#?}");
    assert_eq!(quiet[0].index, "public.quiet (a, b DESC)", "{report:#?}");
    assert_eq!(quiet[0].serves.len(), 2, "{report:#?}");
    assert!(
        quiet[0].sql[0]
            .starts_with("CREATE INDEX CONCURRENTLY IF NOT EXISTS quiet_a_b_idx ON public.quiet (a, b DESC)")
    );
    assert!(on("busy").is_empty(), "the same reads on a table taking 400,000 writes: {report:#?}");
    assert!(report.rejected_for_writes.iter().any(|r| r.index.starts_with("public.busy ")), "{report:#?}");
    assert!(report.proposals.len() < 5, "fewer indexes than one per statement: {report:#?}");
    let legacy = on("legacy");
    assert_eq!(legacy.len(), 1, "{report:#?}");
    assert!(
        report
            .redundant
            .iter()
            .any(|r| r.index == "public.legacy_a_idx"
                && r.sql == "DROP INDEX CONCURRENTLY IF EXISTS public.legacy_a_idx;"),
        "{report:#?}"
    );
    assert!(report.saved_ms > 0.0 && report.saved_ms <= report.total_ms, "{report:#?}");

    // The same from the command line.
    let out = tally(&["doctor", "--workload", "--top", "10"]).database(&url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for expected in [
        "Proposed indexes (",
        "public.quiet (a, b DESC)",
        "Not proposed, writes outweigh reads: public.busy",
        "Made redundant: public.legacy_a_idx",
    ] {
        assert!(out.stdout.contains(expected), "`{expected}` in:\n{}", out.stdout);
    }
    pool.close().await;
    drop(cluster);
}

#[tokio::test]
async fn without_pg_stat_statements_it_says_how_to_load_it() {
    let db = TestDb::migrated().await;
    let loaded: String =
        sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')").fetch_one(&db.pool).await.unwrap();
    assert!(!loaded.contains("pg_stat_statements"), "the test server runs with the default shared_preload_libraries");
    let out = tally(&["doctor", "--workload"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("pg_stat_statements is not loaded"), "{}", out.stderr);
    assert!(
        out.stderr.contains("shared_preload_libraries = 'pg_stat_statements'")
            && out.stderr.contains("restart PostgreSQL"),
        "{}",
        out.stderr
    );
    let out = tally(&["doctor", "--top", "5"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(2), "--top needs --workload: {out:?}");
}
