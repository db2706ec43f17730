//! The `tally` binary as a real process: a command with a clean
//! environment and a scratch working directory, run to completion (exit
//! code, stdout, stderr) or started in the background (stderr collected,
//! signals, waiting for its exit).

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tally::db::DatabaseUrl;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::wait_until;

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
