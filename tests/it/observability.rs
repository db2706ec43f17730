//! What Prometheus sees: the /metrics output against SPEC §6 and promtool's
//! linter, and a real Prometheus scraping a running worker, evaluating the
//! alert rules and the worker dashboard's queries.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::harness::{Running, TestDb, free_addr, http_get, metric, repo, start_worker, tool, wait_until};

const CONFIG: &str = r#"
[aggregates.daily_campaign_metrics]
every = "1s"
[aggregates.daily_event_counts]
mode = "incremental"
every = "1s"
"#;

async fn worker(db: &TestDb) -> (Running, std::net::SocketAddr) {
    let (running, addr) = start_worker(&db.url, CONFIG);
    let ready = wait_until(Duration::from_secs(30), || async {
        let text = http_get(addr, "/metrics").await.map(|(_, b)| b).unwrap_or_default();
        metric(&text, "tally_refreshes_total{aggregate=\"daily_event_counts\",outcome=\"success\"}")
            .is_some_and(|v| v >= 1.0)
    })
    .await;
    assert!(ready, "{}", running.log());
    (running, addr)
}

/// The contract of SPEC §6: every metric, its type and its labels.
const CONTRACT: &[(&str, &str, &[&str])] = &[
    ("tally_refresh_duration_seconds", "histogram", &["aggregate", "mode"]),
    ("tally_refreshes_total", "counter", &["aggregate", "outcome"]),
    ("tally_refresh_failures_total", "counter", &["aggregate"]),
    ("tally_refresh_last_success_timestamp_seconds", "gauge", &["aggregate"]),
    ("tally_aggregate_staleness_seconds", "gauge", &["aggregate"]),
    ("tally_aggregate_rows", "gauge", &["aggregate"]),
    ("tally_invalidated_days", "gauge", &["aggregate"]),
    ("tally_partitions", "gauge", &["table"]),
    ("tally_partition_future_months", "gauge", &["table"]),
    ("tally_default_partition_rows", "gauge", &["table"]),
    ("tally_ingest_rows_total", "counter", &["outcome"]),
    ("tally_build_info", "gauge", &["version"]),
];

#[tokio::test]
async fn metrics_follow_the_contract_and_pass_promtool() {
    let db = TestDb::migrated().await;
    let (mut running, addr) = worker(&db).await;
    let (_, text) = http_get(addr, "/metrics").await.unwrap();
    running.signal(Signal::SIGTERM);
    assert_eq!(running.wait(Duration::from_secs(30)).await, Some(0));

    let mut types = BTreeMap::new();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && line.contains('{') {
            let (name, rest) = line.split_once('{').unwrap();
            let family = name.trim_end_matches("_bucket").trim_end_matches("_sum").trim_end_matches("_count");
            for pair in rest.split('}').next().unwrap().split(',') {
                let (label, value) = pair.split_once('=').unwrap();
                labels.entry(family.to_string()).or_default().insert(label.to_string());
                values.entry(label.to_string()).or_default().insert(value.trim_matches('"').to_string());
            }
        }
    }
    for (name, kind, expected) in CONTRACT {
        assert_eq!(types.get(*name).map(String::as_str), Some(*kind), "{name} in\n{text}");
        let mut want: BTreeSet<String> = expected.iter().map(|l| l.to_string()).collect();
        if *kind == "histogram" {
            want.insert("le".to_string());
        }
        assert_eq!(labels.get(*name), Some(&want), "{name}'s labels");
    }
    // Label values are tally's own names, never a campaign, source or user.
    let aggregates: BTreeSet<String> = tally::aggregates::names().iter().map(|n| n.to_string()).collect();
    assert!(values["aggregate"].is_subset(&aggregates), "{:?}", values["aggregate"]);
    assert_eq!(values["table"], BTreeSet::from(["marketing.events".to_string()]));
    let outcomes = ["success", "failure", "skipped_running", "locked_elsewhere", "loaded", "duplicate", "rejected"];
    assert!(values["outcome"].iter().all(|o| outcomes.contains(&o.as_str())), "{:?}", values["outcome"]);
    assert!(values["mode"].iter().all(|m| m == "concurrently" || m == "incremental"));

    let Some(promtool) = tool("promtool") else { return };
    let mut check = tokio::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check.stdin.take().unwrap().write_all(text.as_bytes()).await.unwrap();
    let output = check.wait_with_output().await.unwrap();
    let findings = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    // The one finding tally keeps on purpose: the SPEC name counts calendar
    // days (a quantity, not a duration), which promtool's unit heuristic
    // mistakes for a time unit (docs/operations.md, "Metrics").
    let accepted = "tally_invalidated_days use base unit \"seconds\" instead of \"days\"";
    let other: Vec<&str> = findings.lines().filter(|l| !l.trim().is_empty() && l.trim() != accepted).collect();
    assert!(other.is_empty(), "promtool check metrics:\n{findings}");
}

async fn query(prometheus: std::net::SocketAddr, expr: &str) -> Value {
    let encoded: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    let (_, body) = http_get(prometheus, &format!("/api/v1/query?query={encoded}")).await.unwrap_or_default();
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_worker_and_evaluates_rules_and_dashboard_queries() {
    let Some(prometheus) = tool("prometheus") else { return };
    let db = TestDb::migrated().await;
    let (mut running, addr) = worker(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let rules = repo().join("prometheus/alerts.yml");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: tally\n    static_configs:\n      - targets: [\"{addr}\"]\n",
            rules.display()
        ),
    )
    .unwrap();
    let listen = free_addr();
    let mut server = tokio::process::Command::new(prometheus)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let scraped = wait_until(Duration::from_secs(60), || async {
        let answer = query(listen, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}").await;
        answer["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    assert!(scraped, "Prometheus never returned tally_aggregate_staleness_seconds");
    let answer = query(listen, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}").await;
    let value: f64 = answer["data"]["result"][0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!((0.0..60.0).contains(&value), "staleness {value}");
    assert_eq!(answer["data"]["result"][0]["metric"]["job"], "tally");

    // The alert rules are loaded, and every query of the worker dashboard evaluates.
    let (_, rules) = http_get(listen, "/api/v1/rules").await.unwrap();
    let rules: Value = serde_json::from_str(&rules).unwrap();
    assert_eq!(rules["data"]["groups"][0]["rules"].as_array().map(Vec::len), Some(6), "{rules}");
    let worker_dashboard: Value = serde_json::from_str(tally::dashboards::DASHBOARDS[1].1).unwrap();
    for panel in worker_dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$__rate_interval", "1m");
            let answer = query(listen, &expr).await;
            assert_eq!(answer["status"], "success", "{}: {expr}: {answer}", panel["title"]);
        }
    }
    let up = query(listen, "up{job=\"tally\"}").await;
    assert_eq!(up["data"]["result"][0]["value"][1], "1");
    server.kill().await.unwrap();
    running.signal(Signal::SIGTERM);
    assert_eq!(running.wait(Duration::from_secs(30)).await, Some(0));
}
