//! The soak's traffic: NDJSON event documents fed to `tally ingest`
//! processes, and old refresh history for the pruning to remove.

use std::io::Write as _;
use std::process::Stdio;

use rand::RngExt;
use sqlx::PgPool;
use tokio::process::Command;

use crate::db::DatabaseUrl;

/// NDJSON event documents in the brief's shape, over the last 30 days.
pub(super) fn lines(rng: &mut rand::rngs::StdRng, count: usize) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp_millis();
    let mut out = Vec::with_capacity(count * 200);
    for _ in 0..count {
        let at = now - rng.random_range(0..30 * 86_400_000i64);
        let event = ["page_view", "page_view", "page_view", "signup", "purchase"][rng.random_range(0..5)];
        let source = ["google", "newsletter", "linkedin", "facebook"][rng.random_range(0..4)];
        let revenue = if event == "purchase" { rng.random_range(10..500) } else { 0 };
        let _ = writeln!(
            out,
            r#"{{"_id":"soak-{}","userId":"u{}","event":"{event}","session":"s{}","timestamp":{{"$date":{{"$numberLong":"{at}"}}}},"properties":{{"utm_source":"{source}","utm_medium":"cpc","utm_campaign":"soak","revenue":{revenue}}}}}"#,
            rng.random::<u64>(),
            rng.random_range(0..5000),
            rng.random_range(0..20000),
        );
    }
    out
}

pub(super) async fn ingest(exe: &std::path::Path, url: &DatabaseUrl, input: &[u8]) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args(["ingest", "-"])
        .env("DATABASE_URL", url.expose())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = input.to_vec();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(&input).await.map_err(|e| e.to_string())
        // Dropping stdin closes the pipe: the end of the input.
    });
    let output = child.wait_with_output().await.map_err(|e| e.to_string())?;
    writer.await.map_err(|e| e.to_string())??;
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

pub(super) async fn seed_old_history(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO tally.refresh_runs (aggregate, mode, started_at, finished_at, outcome, rows)
         SELECT 'daily_event_counts', 'concurrently', now() - interval '3 days' - g * interval '1 minute',
                now() - interval '3 days' - g * interval '1 minute' + interval '1 second', 'success', 1
         FROM generate_series(1, 200) AS g",
    )
    .execute(pool)
    .await?;
    Ok(result.rows_affected() as i64)
}
