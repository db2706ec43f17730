//! The binary's contract: exit codes (0 ok, 1 runtime, 2 usage/config),
//! errors that name the problem and the fix, and no password in any output.

use crate::harness::{TestDb, free_addr, tally};

#[tokio::test]
async fn bad_config_keys_exit_2_naming_the_file_and_key() {
    let out = tally(&["migrate"]).config_file("[partitions]\npremake_month = 3\n").output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("tally.toml") && out.stderr.contains("premake_month"), "{}", out.stderr);
}

#[tokio::test]
async fn bad_cron_unknown_aggregates_and_bad_durations_exit_2() {
    let cases = [
        ("[aggregates.daily_event_counts]\nschedule = \"every day\"\n", "aggregates.daily_event_counts.schedule"),
        ("[aggregates.daily_revenue]\nenabled = true\n", "no aggregate named `daily_revenue`"),
        ("[refresh]\nshutdown_grace = \"soon\"\n", "`soon` is not a duration"),
        ("reporting_timezone = \"Europe/Atlantis\"\n", "unknown timezone"),
    ];
    for (toml, expected) in cases {
        let out = tally(&["status"]).config_file(toml).output().await;
        assert_eq!(out.code, Some(2), "{toml}: {out:?}");
        assert!(out.stderr.contains(expected), "{toml}: {}", out.stderr);
    }
}

#[tokio::test]
async fn a_missing_config_file_and_a_missing_database_url_exit_2() {
    let out = tally(&["status", "--config", "/nonexistent/tally.toml"]).output().await;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("/nonexistent/tally.toml"), "{}", out.stderr);
    let out = tally(&["status"]).output().await;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("DATABASE_URL is not set"), "{}", out.stderr);
    let out = tally(&["frobnicate"]).output().await;
    assert_eq!(out.code, Some(2), "clap usage errors exit 2");
}

#[tokio::test]
async fn unknown_aggregate_names_on_the_command_line_exit_2() {
    let db = TestDb::migrated().await;
    let out = tally(&["refresh", "daily_event_counts", "daily_revenue"]).database(&db.url).output().await;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("no aggregate named `daily_revenue`"), "{}", out.stderr);
    assert!(out.stderr.contains("known aggregates: daily_campaign_metrics, daily_event_counts"), "{}", out.stderr);
}

#[tokio::test]
async fn a_database_that_is_down_is_retried_then_reported_without_the_password() {
    let down = format!("postgres://tally:s3cret-pw@{}/marketing", free_addr());
    let out = tally(&["migrate"])
        .env("DATABASE_URL", &down)
        .config_file("[database]\nconnect_timeout = \"2s\"\n")
        .output()
        .await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("PostgreSQL unreachable; retrying"), "retries with backoff: {}", out.stderr);
    assert!(out.stderr.contains("could not connect to PostgreSQL at postgres://tally:***@"), "{}", out.stderr);
    assert!(out.stderr.contains("check that the server is running"), "{}", out.stderr);
    assert!(!out.stderr.contains("s3cret-pw") && !out.stdout.contains("s3cret-pw"));
    assert!(!out.stderr.contains("panicked"));
}

#[tokio::test]
async fn migrate_refresh_and_status_work_end_to_end_and_never_log_the_password() {
    let db = TestDb::migrated().await;
    // Trust authentication ignores the password, so it can be anything.
    let mut url = url::Url::parse(db.url.expose()).unwrap();
    url.set_password(Some("s3cret-pw")).unwrap();
    let url = url.to_string();

    let migrate = tally(&["migrate"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(migrate.code, Some(0), "{migrate:?}");
    let refresh = tally(&["refresh"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(refresh.code, Some(0), "{refresh:?}");
    assert!(refresh.stdout.contains("daily_campaign_metrics: refreshed (built, 0 rows"), "{}", refresh.stdout);
    assert!(refresh.stdout.contains("daily_event_counts: refreshed (built"), "{}", refresh.stdout);

    let status = tally(&["status", "--json"]).env("DATABASE_URL", &url).output().await;
    assert_eq!(status.code, Some(0), "{status:?}");
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let first = &json["aggregates"][0];
    assert_eq!(first["name"], "daily_campaign_metrics");
    assert_eq!(first["mode"], "concurrently");
    assert_eq!(first["built"], true);
    assert_eq!(first["rows"], 0);
    assert!(first["last_success"].is_string() && first["next_run"].is_string());
    assert!(first["staleness_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(json["tables"][0]["table"], "marketing.events");

    let text = tally(&["status"]).env("DATABASE_URL", &url).output().await;
    assert!(text.stdout.contains("daily_event_counts (concurrently, every 5m; ok)"), "{}", text.stdout);
    for out in [&migrate, &refresh, &status, &text] {
        assert!(!out.stderr.contains("s3cret-pw") && !out.stdout.contains("s3cret-pw"), "{out:?}");
    }
    assert!(migrate.stderr.contains(":***@"), "the URL is logged redacted: {}", migrate.stderr);
}

#[tokio::test]
async fn healthcheck_fails_with_a_reason_when_nothing_listens() {
    let out = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", &free_addr().to_string()).output().await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("/healthz"), "{}", out.stderr);
    let out = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", "not-an-address").output().await;
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("TALLY_METRICS_ADDR"), "{}", out.stderr);
}

#[tokio::test]
async fn database_url_comes_from_dotenv_and_the_environment_wins() {
    let db = TestDb::migrated().await;
    let from_file = tally(&["status"]).file(".env", &format!("DATABASE_URL={}\n", db.url.expose())).output().await;
    assert_eq!(from_file.code, Some(0), "{from_file:?}");
    assert!(from_file.stdout.contains("AGGREGATES"));

    let down = format!("postgres://nobody@{}/nowhere", free_addr());
    let env_wins = tally(&["status"]).file(".env", &format!("DATABASE_URL={down}\n")).database(&db.url).output().await;
    assert_eq!(env_wins.code, Some(0), "{env_wins:?}");
}
