//! A running worker (`tally run`) seen from outside: starting it on a free
//! metrics address, its HTTP endpoints, and waiting for its metrics.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use tally::db::DatabaseUrl;

use super::{Running, tally, wait_until};

/// The two events aggregates every second; the others out of the way, so
/// that the only refreshes that can wait on a lock on marketing.events are
/// these two.
pub const FAST: &str = r#"
[aggregates.daily_campaign_metrics]
every = "1s"
[aggregates.daily_event_counts]
every = "1s"
[aggregates.daily_lead_funnel]
enabled = false
[aggregates.daily_attribution]
enabled = false
"#;

/// Starts `tally run` on `url` with the config `toml`, serving on a free address.
pub fn start_worker(url: &DatabaseUrl, toml: &str) -> (Running, SocketAddr) {
    let addr = free_addr();
    let running = tally(&["run"]).database(url).env("TALLY_METRICS_ADDR", &addr.to_string()).config_file(toml).spawn();
    (running, addr)
}

/// A loopback address nothing listens on right now.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port")
}

/// GET a path on a worker's metrics address; `None` while it does not answer.
pub async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    tally::http::get(addr, path).await.ok()
}

/// The status `/readyz` answers with; `None` while the worker does not answer.
pub async fn ready(addr: SocketAddr) -> Option<u16> {
    http_get(addr, "/readyz").await.map(|(status, _)| status)
}

/// The worker's `/metrics` text; empty while it does not answer.
pub async fn metrics(addr: SocketAddr) -> String {
    http_get(addr, "/metrics").await.map(|(_, body)| body).unwrap_or_default()
}

/// The value of one series in Prometheus text, e.g. `tally_partitions{table="marketing.events"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line[series.len()..].trim().parse().ok())
}

/// The value of `series` on the worker at `addr`, if it serves it.
pub async fn metric_of(addr: SocketAddr, series: &str) -> Option<f64> {
    metric(&metrics(addr).await, series)
}

/// Waits (at most 30 s) until `series` on the worker at `addr` reaches `at_least`.
pub async fn wait_for_metric(addr: SocketAddr, series: &str, at_least: f64) {
    wait_for_metric_within(addr, series, at_least, Duration::from_secs(30)).await;
}

/// Waits until `series` on the worker at `addr` reaches `at_least`.
pub async fn wait_for_metric_within(addr: SocketAddr, series: &str, at_least: f64, within: Duration) {
    let reached = wait_until(within, || async { metric_of(addr, series).await.is_some_and(|v| v >= at_least) }).await;
    assert!(reached, "{series} did not reach {at_least} within {within:?}:\n{}", metrics(addr).await);
}
