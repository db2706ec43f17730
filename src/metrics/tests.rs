//! Unit tests of `metrics`.

use super::*;
use chrono::TimeZone;

#[test]
fn staleness_is_computed_at_scrape_and_infinite_before_any_success() {
    let metrics = Metrics::new(&[("daily_event_counts", "concurrently")]);
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let text = metrics.render(now);
    assert!(text.contains("tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"} +Inf\n"), "{text}");
    let value = sample(&text, "tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"}");
    assert!(value.is_infinite() && value > 0.0, "{text}");
    assert!(text.contains("tally_refreshes_total{aggregate=\"daily_event_counts\",outcome=\"skipped_running\"} 0"));
    assert!(text.contains("tally_build_info{version=\""));

    let started = now - chrono::Duration::seconds(90);
    metrics.record_success("daily_event_counts", started, started + chrono::Duration::seconds(2), 42);
    let text = metrics.render(now);
    assert!(text.contains("tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"} 90"), "{text}");
    assert!(text.contains("tally_aggregate_rows{aggregate=\"daily_event_counts\"} 42"));
    let later = metrics.render(now + chrono::Duration::seconds(30));
    assert!(later.contains("tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"} 120"), "{later}");
}

fn sample(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series} missing in {text}"));
    line[series.len()..].trim().parse().unwrap()
}

#[test]
fn an_older_success_read_back_never_moves_freshness_backwards() {
    let metrics = Metrics::new(&[("daily_event_counts", "concurrently")]);
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    metrics.record_success("daily_event_counts", now - chrono::Duration::seconds(10), now, 1);
    metrics.record_success("daily_event_counts", now - chrono::Duration::seconds(500), now, 1);
    assert!(metrics.render(now).contains("tally_aggregate_staleness_seconds{aggregate=\"daily_event_counts\"} 10"));
}
