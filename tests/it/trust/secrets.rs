//! Input that used to leak the password, panic or be silently misread:
//! `DATABASE_URL` in every malformed shape and in libpq keyword/value form,
//! a malformed `.env`, durations past any sense, and a peer that splits a
//! character across HTTP chunks.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{TestDb, free_addr, tally};

const SECRET: &str = "s3cretPW";

fn assert_no_secret(out: &crate::harness::Finished, case: &str) {
    assert!(!out.stderr.contains(SECRET) && !out.stdout.contains(SECRET), "{case}: the password leaked: {out:?}");
    assert!(!out.stderr.contains("panicked"), "{case}: {out:?}");
}

#[tokio::test]
async fn no_malformed_database_url_is_echoed_with_its_password() {
    for url in [
        "postgres//u:s3cretPW@localhost/db",
        "u:s3cretPW@localhost/db",
        "postgres:u:s3cretPW@localhost/db",
        "postgres://u:s3cretPW@localhost/db?sslmode=bogus",
        "postgres://u:s3cretPW@localhost:99999/db",
        "host=localhost password=s3cretPW dbname=db port=notaport",
        "host=localhost password='s3cretPW dbname=db",
        "host=localhost dbname=db s3cretPW",
        "postgres://u@localhost/db?password=s3cretPW&sslmode=bogus",
        "postgres://r4:12/s3cretPW@localhost:5432/db",
        "postgres://tally:123#s3cretPW@localhost:5432/db",
        "postgres://tally:77?s3cretPW@localhost:5432/db",
        "postgres://tally:s3cretPW/marketing",
        "s3cretPW",
        "mysql:s3cretPW",
    ] {
        let out = tally(&["status"]).env("DATABASE_URL", url).output().await;
        assert_eq!(out.code, Some(2), "{url}: {out:?}");
        assert!(out.stderr.contains("DATABASE_URL"), "{url}: {}", out.stderr);
        assert_no_secret(&out, url);
        assert!(!out.stderr.contains("error with configuration: error with configuration"), "{}", out.stderr);
    }
}

#[tokio::test]
async fn a_libpq_keyword_value_database_url_works_and_never_shows_its_password() {
    let db = TestDb::migrated().await;
    let url = url::Url::parse(db.url.expose()).unwrap();
    let conninfo = format!(
        "host={} port={} user={} password='{SECRET} x' dbname={} sslmode=disable",
        url.host_str().unwrap(),
        url.port().unwrap_or(5432),
        url.username(),
        db.name
    );
    let out = tally(&["status"]).env("DATABASE_URL", &conninfo).output().await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("AGGREGATES"), "{}", out.stdout);
    assert!(out.stderr.contains(":***@"), "logged as a redacted URL: {}", out.stderr);
    assert_no_secret(&out, "keyword/value");
}

#[tokio::test]
async fn a_malformed_dotenv_line_is_reported_by_number_and_never_echoed() {
    let db = TestDb::migrated().await;
    let dotenv = format!("# settings\nRUST_LOG=info\nDATABASE_URL=postgres://u:{SECRET}@localhost/db 'unclosed\n");
    // Without DATABASE_URL in the environment the bad line matters: exit 2.
    let alone = tally(&["status"]).file(".env", &dotenv).output().await;
    assert_eq!(alone.code, Some(2), "{alone:?}");
    assert!(alone.stderr.contains(".env line 3 (DATABASE_URL)"), "{}", alone.stderr);
    assert_no_secret(&alone, "without the environment");
    // The environment supplies what the line would have set: a warning, and the command runs.
    let env_wins = tally(&["status"]).file(".env", &dotenv).database(&db.url).output().await;
    assert_eq!(env_wins.code, Some(0), "{env_wins:?}");
    assert!(env_wins.stderr.contains(".env line 3 (DATABASE_URL)"), "{}", env_wins.stderr);
    assert!(env_wins.stderr.contains("WARN"), "{}", env_wins.stderr);
    assert_no_secret(&env_wins, "with the environment");
    // A line with no key cannot be judged: it stops tally, without its text.
    let keyless = tally(&["status"]).file(".env", &format!("A=1\n{SECRET} here\n")).database(&db.url).output().await;
    assert_eq!(keyless.code, Some(2), "{keyless:?}");
    assert!(keyless.stderr.contains(".env line 2 is not a valid KEY=VALUE line"), "{}", keyless.stderr);
    assert_no_secret(&keyless, "a keyless line");
}

#[tokio::test]
async fn durations_past_their_limit_exit_2_naming_the_key_and_the_limit() {
    let cases = [
        ("[aggregates.daily_event_counts]\nevery = \"300000000 years\"\n", "aggregates.daily_event_counts.every"),
        ("[aggregates.daily_event_counts]\nevery = \"18446744073709551615s\"\n", "aggregates.daily_event_counts.every"),
        ("[database]\nstatement_timeout = \"30d\"\n", "database.statement_timeout"),
        ("[database]\nlock_timeout = \"500us\"\n", "database.lock_timeout"),
        ("[refresh]\nshutdown_grace = \"2 years\"\n", "refresh.shutdown_grace"),
        ("[aggregates.daily_event_counts]\nschedule = \"0 0 0 30 2 *\"\n", "aggregates.daily_event_counts.schedule"),
        (
            "[partitions]\nextra_tables = [\"marketing.a_table_name_that_is_far_too_long_for_its_partition_names_x\"]\n",
            "partitions.extra_tables[0]",
        ),
    ];
    for (toml, key) in cases {
        for command in ["status", "run"] {
            let out = tally(&[command])
                .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
                .env("TALLY_METRICS_ADDR", &free_addr().to_string())
                .config_file(toml)
                .output()
                .await;
            assert_eq!(out.code, Some(2), "{command} {toml}: {out:?}");
            let why = ["limit", "never fires", "63"].iter().any(|w| out.stderr.contains(w));
            assert!(out.stderr.contains(key) && why, "{command} {toml}: {}", out.stderr);
            assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        }
    }
    let out = tally(&["explain", "SELECT 1", "--timeout", "300000000 years"]).output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("limit"), "{}", out.stderr);
    // Under PostgreSQL's 1 ms it would round to 0, which means no limit at all.
    let out = tally(&["explain", "SELECT 1", "--timeout", "500us"]).output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("1 ms"), "{}", out.stderr);
}

#[tokio::test]
async fn healthcheck_survives_a_peer_that_splits_a_character_across_chunks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 1024];
        let _ = stream.read(&mut request).await;
        // "é" is two bytes, sent in two chunks of one byte each.
        let response = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n\xc3\r\n1\r\n\xa9\r\n0\r\n\r\n";
        stream.write_all(response).await.unwrap();
    });
    let out = tally(&["healthcheck"]).env("TALLY_METRICS_ADDR", &addr.to_string()).output().await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("HTTP 503: é"), "{}", out.stderr);
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
}

#[tokio::test]
async fn values_no_real_setting_needs_exit_2_instead_of_overflowing() {
    for (toml, key) in [
        ("[database]\nmax_connections = 100000000\n", "database.max_connections"),
        ("[partitions]\nretention_months = 4294967295\n", "partitions.retention_months"),
        ("attribution_lookback_days = 1000000000\n", "attribution_lookback_days"),
        ("[refresh]\nhistory_days = 4294967295\n", "refresh.history_days"),
        ("[refresh]\nmax_attempts = 1000000\n", "refresh.max_attempts"),
    ] {
        let out = tally(&["status"])
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .config_file(toml)
            .output()
            .await;
        assert_eq!(out.code, Some(2), "{toml}: {out:?}");
        assert!(out.stderr.contains(key) && out.stderr.contains("at most"), "{toml}: {}", out.stderr);
    }
    let out = tally(&["refresh", "--wait", "30d"]).output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("PostgreSQL's limit"), "{}", out.stderr);
}

#[tokio::test]
async fn a_nul_in_dotenv_is_an_error_without_the_value() {
    let out = tally(&["status"]).file(".env", &format!("DATABASE_URL=postgres://u:{SECRET}@h/db\0\n")).output().await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("NUL character") && out.stderr.contains("DATABASE_URL"), "{}", out.stderr);
    assert_no_secret(&out, "a NUL in .env");
}

#[tokio::test]
async fn timestamps_no_partition_can_hold_are_counted_not_fatal() {
    let db = TestDb::migrated().await;
    // What an application may write: infinity, a year past 9999, a spend day in year 300000.
    sqlx::query(
        "INSERT INTO marketing.events (event, occurred_at) VALUES
             ('page_view', 'infinity'), ('page_view', '-infinity'), ('page_view', '270000-01-01'),
             ('page_view', now())",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    let toml = "[aggregates.daily_campaign_spend]\nmode = \"incremental\"\n";
    let built = tally(&["refresh", "daily_campaign_spend"]).database(&db.url).config_file(toml).output().await;
    assert_eq!(built.code, Some(0), "{built:?}");
    sqlx::query(
        "INSERT INTO marketing.campaign_spend (day, utm_source, utm_campaign, spend) VALUES
             ('300000-01-01', 'google', 'far', 1), (current_date, 'google', 'near', 2)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    for args in [vec!["partitions"], vec!["status"], vec!["refresh", "daily_campaign_spend"]] {
        let out = tally(&args).database(&db.url).config_file(toml).output().await;
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
    let status = tally(&["status"]).database(&db.url).output().await;
    assert!(status.stdout.contains("3 rows in the default partition"), "{}", status.stdout);
    let near: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reporting.daily_campaign_spend WHERE utm_campaign = 'near'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(near, 1, "the days tally can hold were refreshed");
}
