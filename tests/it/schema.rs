//! Migrations create the schema of SPEC §3, and apply idempotently.

use tally::db::EphemeralCluster;

use crate::harness::{TestDb, tally};

#[tokio::test]
async fn migrations_create_the_three_schemas_and_tables() {
    let db = TestDb::migrated().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('marketing', 'reporting', 'tally') AND c.relkind IN ('r', 'p') ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "marketing.campaign_spend",
            "marketing.conversions",
            "marketing.events",
            "marketing.events_default",
            "marketing.leads",
            // The migration bookkeeping, in tally's schema (sqlx.toml): nothing in public.
            "tally._sqlx_migrations",
            "tally.index_sightings",
            "tally.ingest_runs",
            "tally.invalidations",
            "tally.partition_log",
            "tally.refresh_runs",
            "tally.trigger_sets",
        ]
    );
    // A second run applies nothing and fails nothing.
    tally::MIGRATOR.run(&db.pool).await.unwrap();
}

#[tokio::test]
async fn leads_have_the_briefs_indexes_but_no_redundant_email_index() {
    let db = TestDb::migrated().await;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'marketing' AND tablename = 'leads' ORDER BY indexname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let on_email: Vec<&String> = indexes.iter().filter(|d| d.contains("(email)")).collect();
    assert_eq!(on_email.len(), 1, "exactly one index on email (the UNIQUE constraint's): {indexes:#?}");
    assert!(on_email[0].contains("UNIQUE"));
    assert!(indexes.iter().any(|d| d.contains("(source, campaign, created_at)")), "{indexes:#?}");
    assert!(indexes.iter().any(|d| d.contains("(status) WHERE (status <> 'converted'::text)")), "{indexes:#?}");
}

#[tokio::test]
async fn events_is_partitioned_by_month_with_its_indexes() {
    let db = TestDb::migrated().await;
    let key: String =
        sqlx::query_scalar("SELECT pg_get_partkeydef('marketing.events'::regclass)").fetch_one(&db.pool).await.unwrap();
    assert_eq!(key, "RANGE (occurred_at)");
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'marketing' AND tablename = 'events' ORDER BY indexname",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 4, "{indexes:#?}");
    assert!(
        indexes
            .iter()
            .any(|d| d.contains("UNIQUE") && d.contains("(event_id, occurred_at) WHERE (event_id IS NOT NULL)"))
    );
    assert!(indexes.iter().any(|d| d.contains("gin (properties jsonb_path_ops)")));
    assert!(indexes.iter().any(|d| d.contains("(user_id, occurred_at)")));

    // The unique index makes re-inserting a source document a no-op.
    for _ in 0..2 {
        sqlx::query(
            "INSERT INTO marketing.events (event_id, event, occurred_at) VALUES ('doc-1', 'page_view', '2020-01-01')
             ON CONFLICT (event_id, occurred_at) WHERE event_id IS NOT NULL DO NOTHING",
        )
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM marketing.events_default").fetch_one(&db.pool).await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn conversions_need_a_lead_and_keep_revenue_when_one_is_deleted() {
    let db = TestDb::migrated().await;
    let lead: String =
        sqlx::query_scalar("INSERT INTO marketing.leads (email) VALUES ('a@example.com') RETURNING id::text")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    sqlx::query("INSERT INTO marketing.conversions (lead_id, kind, revenue) VALUES ($1::uuid, 'purchase', 10)")
        .bind(&lead)
        .execute(&db.pool)
        .await
        .unwrap();
    let orphan = sqlx::query("INSERT INTO marketing.conversions (lead_id, kind) VALUES (gen_random_uuid(), 'signup')")
        .execute(&db.pool)
        .await
        .unwrap_err();
    assert!(orphan.to_string().contains("foreign key"), "{orphan}");
    let delete =
        sqlx::query("DELETE FROM marketing.leads WHERE id = $1::uuid").bind(&lead).execute(&db.pool).await.unwrap_err();
    assert!(delete.to_string().contains("foreign key"), "deleting a converted lead is refused: {delete}");
}

#[tokio::test]
async fn tally_reader_reads_reporting_and_nothing_else() {
    let db = TestDb::migrated().await;
    sqlx::query("CREATE MATERIALIZED VIEW reporting.probe AS SELECT 1 AS one").execute(&db.pool).await.unwrap();
    sqlx::query("INSERT INTO marketing.leads (email) VALUES ('secret@example.com')").execute(&db.pool).await.unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE tally_reader").execute(&mut *tx).await.unwrap();
    let one: i32 = sqlx::query_scalar("SELECT one FROM reporting.probe").fetch_one(&mut *tx).await.unwrap();
    assert_eq!(one, 1, "an aggregate created after the migration is readable (default privileges)");
    let denied = sqlx::query("SELECT email FROM marketing.leads").fetch_all(&mut *tx).await.unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
}

#[tokio::test]
async fn without_createrole_the_reader_role_is_skipped_with_a_warning() {
    // A cluster of its own: tally_reader must not exist yet.
    let mut cluster = tokio::task::spawn_blocking(EphemeralCluster::start).await.unwrap().unwrap();
    let admin = sqlx::PgPool::connect(cluster.url().expose()).await.unwrap();
    sqlx::query("CREATE ROLE app LOGIN").execute(&admin).await.unwrap();
    sqlx::query("CREATE DATABASE marketing OWNER app").execute(&admin).await.unwrap();
    let url = format!("postgres://app@127.0.0.1:{}/marketing", cluster.port());

    let out = tally(&["migrate"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("tally_reader was not created"), "{}", out.stderr);
    assert!(out.stderr.contains("docs/security.md"), "{}", out.stderr);
    let reader: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = 'tally_reader'")
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(reader, 0);
    let again = tally(&["migrate"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(again.code, Some(0), "{again:?}");
    admin.close().await;
    tokio::task::spawn_blocking(move || cluster.stop()).await.unwrap().unwrap();
}
