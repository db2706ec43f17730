//! A throwaway PostgreSQL cluster for `tally demo` and the test suite when no
//! `DATABASE_URL` is given: `initdb` in a temporary directory, started on a
//! free loopback port, stopped and deleted when dropped.
//!
//! When tally runs as root, the cluster runs as the `postgres` OS user,
//! because PostgreSQL refuses to run as root. Durability settings are off
//! (`fsync`, `full_page_writes`): the data is disposable by design.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Gid, Uid, User, chown};
use tempfile::TempDir;

use super::DatabaseUrl;

/// Why a throwaway cluster could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found; install the postgresql \
         server package, set TALLY_PG_BINDIR to their directory, or set DATABASE_URL to use a running server"
    )]
    NoBinaries,
    #[error(
        "running as root, but there is no `postgres` OS user to run the throwaway cluster as; create one or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error("{step} failed for the throwaway cluster in {dir}: {output}")]
    Command { step: &'static str, dir: PathBuf, output: String },
    #[error("preparing the throwaway cluster: {0}")]
    Io(#[from] std::io::Error),
}

/// A running throwaway cluster. Owned by whoever started it; dropping it
/// stops the server and deletes its files.
pub struct EphemeralCluster {
    dir: Option<TempDir>,
    bindir: PathBuf,
    owner: Option<(Uid, Gid)>,
    port: u16,
    /// Extra `-c name=value` server settings.
    settings: Vec<String>,
}

impl EphemeralCluster {
    /// Initializes and starts a cluster (a few seconds). Blocking.
    pub fn start() -> Result<EphemeralCluster, ClusterError> {
        EphemeralCluster::start_with(&[])
    }

    /// [`EphemeralCluster::start`] with server settings
    /// (`shared_preload_libraries`, ...), which hold across restarts.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<EphemeralCluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NoBinaries)?;
        let owner = if Uid::effective().is_root() {
            let user = User::from_name("postgres").ok().flatten().ok_or(ClusterError::NoPostgresUser)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("tally-pg-").tempdir()?;
        if let Some((uid, gid)) = owner {
            chown(dir.path(), Some(uid), Some(gid)).map_err(std::io::Error::from)?;
        }
        let settings = settings.iter().map(|(name, value)| format!(" -c {name}={value}")).collect();
        let mut cluster = EphemeralCluster { dir: Some(dir), bindir, owner, port: 0, settings };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &["-D", path_str(&data), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
        )?;
        // A port found free can be taken before the server binds it; try a few.
        let mut last_error = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => {
                    tracing::info!(dir = %cluster.dir().display(), port = cluster.port, "started a throwaway PostgreSQL cluster");
                    return Ok(cluster);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(ClusterError::NoBinaries))
    }

    /// The URL of database `postgres` on this cluster, as user `postgres`.
    pub fn url(&self) -> DatabaseUrl {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
            .parse()
            .unwrap_or_else(|_| unreachable!("a loopback URL with a numeric port always parses"))
    }

    /// The directory holding the cluster's data, socket and log.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// The port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server but keeps its files, so [`EphemeralCluster::resume`]
    /// can start it again on the same port (for tests of a database outage).
    pub fn pause(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        self.run("pg_ctl stop", &["-D", path_str(&data), "-m", "fast", "-w", "stop"])
    }

    /// Starts a paused server again on its port.
    pub fn resume(&self) -> Result<(), ClusterError> {
        self.start_server()
    }

    /// Stops the server (fast shutdown) and deletes its files.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        if self.dir.is_none() {
            return Ok(());
        }
        let stopped = if self.data_dir().join("postmaster.pid").exists() { self.pause() } else { Ok(()) };
        if let Some(dir) = self.dir.take() {
            dir.close()?;
        }
        stopped
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn start_server(&self) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let log = self.dir().join("server.log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200{}",
            self.port,
            self.dir().display(),
            self.settings.concat()
        );
        self.run(
            "pg_ctl start",
            &["-D", path_str(&data), "-l", path_str(&log), "-o", &options, "-w", "-t", "60", "start"],
        )
        .map_err(|e| match e {
            ClusterError::Command { step, dir, output } => {
                let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                ClusterError::Command { step, dir, output: format!("{output}\n{server_log}") }
            }
            other => other,
        })
    }

    fn run(&self, step: &'static str, args: &[&str]) -> Result<(), ClusterError> {
        let program = self.bindir.join(step.split(' ').next().unwrap_or(step));
        let mut command = Command::new(program);
        command.args(args).current_dir(self.dir());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        let output = command.output()?;
        if output.status.success() {
            return Ok(());
        }
        Err(ClusterError::Command {
            step,
            dir: self.dir().to_path_buf(),
            output: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
                .trim()
                .to_string(),
        })
    }
}

/// Runs `work` against the server at `url`, or, when there is none (no
/// `DATABASE_URL`), against a throwaway cluster started for it and removed
/// afterwards, whatever `work` returned (or if it is dropped half-way: the
/// cluster's `Drop` removes it). What `demo`, `bench` and the tests share.
pub async fn with_server<T, E, F, Fut>(url: Option<DatabaseUrl>, work: F) -> Result<T, E>
where
    F: FnOnce(DatabaseUrl) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
    E: From<ClusterError>,
{
    if let Some(url) = url {
        return work(url).await;
    }
    tracing::info!("DATABASE_URL is not set; starting a throwaway PostgreSQL cluster");
    let cluster = tokio::task::spawn_blocking(EphemeralCluster::start)
        .await
        .map_err(|e| ClusterError::Io(std::io::Error::other(e)))??;
    let result = work(cluster.url()).await;
    let mut cluster = cluster;
    match tokio::task::spawn_blocking(move || cluster.stop()).await {
        Ok(Ok(())) => tracing::info!("removed the throwaway PostgreSQL cluster"),
        Ok(Err(e)) => tracing::warn!(error = %e, "could not remove the throwaway cluster"),
        Err(e) => tracing::warn!(error = %e, "could not remove the throwaway cluster"),
    }
    result
}

impl Drop for EphemeralCluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "could not stop the throwaway PostgreSQL cluster");
        }
    }
}

/// `TALLY_PG_BINDIR`, else the directory of `initdb` on `PATH`, else the
/// newest `/usr/lib/postgresql/*/bin` (Debian and Ubuntu keep them there).
fn find_bindir() -> Option<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let environment = crate::config::env::Environment::read();
    if let Some(dir) = environment.pg_bindir {
        return has_initdb(&dir).then_some(dir);
    }
    let on_path = environment
        .path
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .find(|dir| has_initdb(dir));
    if on_path.is_some() {
        return on_path;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}
