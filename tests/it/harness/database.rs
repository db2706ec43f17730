//! Database lifecycle: the PostgreSQL server the tests run on
//! (`DATABASE_URL`, or a throwaway cluster started once per test process, as
//! `tally demo` does), a fresh database per test, dropped when the test ends,
//! and the databases of test processes that died cleaned up at the next run.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, PgPool};
use tally::db::{DatabaseUrl, EphemeralCluster};

struct Server {
    url: DatabaseUrl,
    cluster: Option<EphemeralCluster>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

extern "C" fn stop_test_cluster() {
    if let Some(Server { cluster: Some(cluster), .. }) = SERVER.get() {
        let _ = cluster.pause();
        let _ = std::fs::remove_dir_all(cluster.dir());
    }
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| match DatabaseUrl::from_env() {
        Ok(Some(url)) => Server { url, cluster: None },
        _ => {
            let cluster =
                EphemeralCluster::start().expect("DATABASE_URL is unset and no throwaway cluster could start");
            // Statics are never dropped: stop the cluster when the test process exits.
            // SAFETY: registers a plain extern "C" function with no captured state.
            unsafe { nix::libc::atexit(stop_test_cluster) };
            Server { url: cluster.url(), cluster: Some(cluster) }
        }
    })
}

/// The admin URL of the test server (database `postgres`).
pub fn server_url() -> DatabaseUrl {
    server().url.with_database("postgres")
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);
static CLEANED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// A fresh database, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: DatabaseUrl,
    pub pool: PgPool,
}

impl TestDb {
    /// An empty database (no migrations).
    pub async fn empty() -> TestDb {
        TestDb::created("").await
    }

    /// A migrated database encoded in LATIN1, as some older installations
    /// are: the server refuses characters outside Latin-1 that UTF-8 text holds.
    pub async fn latin1() -> TestDb {
        let db = TestDb::created("ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0").await;
        tally::MIGRATOR.run(&db.pool).await.expect("migrations apply");
        // Visitor sketches, where the server has postgresql-hll (as tally migrate does).
        tally::aggregates::features::prepare(&db.pool).await;
        db
    }

    /// A database created with `options` after its name in `CREATE DATABASE`.
    async fn created(options: &str) -> TestDb {
        let admin = PgPool::connect(server_url().expose()).await.expect("connect to the test server");
        CLEANED.get_or_init(|| drop_stale_databases(&admin)).await;
        let name = format!("tally_test_{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::SeqCst));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} {options}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = server().url.with_database(&name);
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(10)
            .connect(url.expose())
            .await
            .expect("connect to the test database");
        TestDb { name, url, pool }
    }

    /// A database with every migration applied.
    pub async fn migrated() -> TestDb {
        let db = TestDb::empty().await;
        tally::MIGRATOR.run(&db.pool).await.expect("migrations apply");
        // Visitor sketches, where the server has postgresql-hll (as tally migrate does).
        tally::aggregates::features::prepare(&db.pool).await;
        db
    }

    /// A second, independent pool on the same database.
    pub async fn another_pool(&self) -> PgPool {
        PgPool::connect(self.url.expose()).await.expect("connect")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = PgPool::connect(server_url().expose()).await.ok()?;
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&admin)
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Drops test databases left by test processes that no longer run.
async fn drop_stale_databases(admin: &PgPool) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname::text FROM pg_database WHERE datname LIKE 'tally\\_test\\_%'")
            .fetch_all(admin)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(2).unwrap_or_default();
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ =
                sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(admin).await;
        }
    }
}

/// The single number `sql` returns, e.g. a `count(*)`.
pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_one(pool).await.unwrap()
}
