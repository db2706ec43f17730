//! Test harness: a real PostgreSQL server (`DATABASE_URL`, or a throwaway
//! cluster started once per test process, as `tally demo` does), a fresh
//! database per test, and helpers to run the `tally` binary as a real process.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgPool};
use tally::config::Config;
use tally::db::{DatabaseUrl, EphemeralCluster};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

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
        db
    }

    /// Holds ACCESS EXCLUSIVE on `marketing.events` (until the transaction
    /// ends), so any refresh or partition change waits for it.
    pub async fn lock_events(&self) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let mut tx = self.another_pool().await.begin().await.expect("begin");
        sqlx::query("LOCK TABLE marketing.events IN ACCESS EXCLUSIVE MODE").execute(&mut *tx).await.expect("lock");
        tx
    }

    /// Sessions of this database waiting for a lock.
    pub async fn sessions_waiting_for_locks(&self) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&self.pool)
        .await
        .expect("pg_stat_activity")
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

/// A validated config from TOML text.
pub fn config(toml: &str) -> Arc<Config> {
    Arc::new(Config::from_toml(toml, Path::new("test.toml")).expect("test config is valid"))
}

/// A loopback address nothing listens on right now.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

/// The value of one series in Prometheus text, e.g. `tally_partitions{table="marketing.events"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

/// A `tally` command with a clean environment and a scratch working directory
/// (so no `.env` of the developer's is read).
pub struct TallyCommand {
    pub command: Command,
    pub dir: tempfile::TempDir,
}

pub fn tally(args: &[&str]) -> TallyCommand {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tally"));
    command
        .args(args)
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("TALLY_CONFIG")
        .env_remove("TALLY_METRICS_ADDR")
        .env_remove("TALLY_LOG_FORMAT")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    TallyCommand { command, dir }
}

impl TallyCommand {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn database(self, url: &DatabaseUrl) -> Self {
        self.env("DATABASE_URL", url.expose())
    }

    /// Writes a file (e.g. `.env`) into the working directory.
    pub fn file(self, name: &str, contents: &str) -> Self {
        std::fs::write(self.dir.path().join(name), contents).expect("write file");
        self
    }

    /// Writes `toml` to a file in the working directory and points `--config` at it.
    pub fn config_file(mut self, toml: &str) -> Self {
        let path = self.dir.path().join("tally.toml");
        std::fs::write(&path, toml).expect("write config");
        self.command.arg("--config").arg(path);
        self
    }

    /// Runs to completion (at most 3 minutes).
    pub async fn output(mut self) -> Finished {
        let output = tokio::time::timeout(Duration::from_secs(180), self.command.output())
            .await
            .expect("tally finished within 3 minutes")
            .expect("tally ran");
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Starts a long-running command (`run`, `demo`) whose stderr is collected.
    pub fn spawn(mut self) -> Running {
        let mut child = self.command.spawn().expect("tally started");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        let reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Running { child, log, reader: Some(reader), _dir: self.dir }
    }
}

/// A finished `tally` process.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A running `tally` process.
pub struct Running {
    pub child: Child,
    log: Arc<Mutex<String>>,
    /// Collects stderr; done at the process's end of output.
    reader: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Everything it wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until its stderr contains `text`.
    pub async fn wait_for_log(&self, text: &str, timeout: Duration) {
        let found = wait_until(timeout, || async { self.log().contains(text) }).await;
        assert!(found, "`{text}` not logged within {timeout:?}; log:\n{}", self.log());
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id().expect("running") as i32);
        nix::sys::signal::kill(pid, signal).expect("signal sent");
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("tally did not exit within {timeout:?}; log:\n{}", self.log()))
            .expect("wait");
        // Everything it wrote before exiting is in the log when this returns.
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
        }
        status.code()
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET a path on a worker's metrics address; `None` while it does not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    tally::http::get(addr, path).await.ok()
}

/// An external program the deployment tests drive (promtool, prometheus,
/// hadolint). `None` (and a note on stderr) when it is not installed, unless
/// `TALLY_REQUIRE_TOOLS` is set, as `.ci/run` does: then a missing tool fails
/// the test.
pub fn tool(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("TALLY_REQUIRE_TOOLS").is_none(),
            "{name} is not on PATH, and TALLY_REQUIRE_TOOLS says it must be: install it as .ci/run does"
        );
        eprintln!("note: {name} is not installed; this check runs where it is (.ci/run installs it)");
    }
    found
}

/// The repository root, where the deployment files live.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}
