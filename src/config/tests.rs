//! Unit tests of config parsing and validation: every error names the key.

use std::path::Path;
use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("tally.toml"))
}

fn error_text(text: &str) -> String {
    parse(text).expect_err("config should be rejected").to_string()
}

#[test]
fn defaults_match_the_spec() {
    let config = Config::load(None).unwrap();
    assert_eq!(config.reporting_timezone.name(), "UTC");
    assert_eq!(config.attribution_lookback_days, 30);
    assert_eq!(config.attribution_half_life_days, 7);
    assert_eq!(config.database.max_connections, 5);
    assert_eq!(config.database.lock_timeout.0, Duration::from_secs(5));
    assert_eq!(config.partitions.premake_months, 3);
    assert_eq!(config.refresh.max_concurrent, 1);
    assert_eq!(config.refresh.max_attempts, 3);
    assert_eq!(config.refresh.shutdown_grace.0, Duration::from_secs(30));
    assert_eq!(config.refresh.history_days, 30);
    let settings = config.aggregate("daily_campaign_metrics").unwrap();
    assert_eq!(settings.mode, Mode::Concurrently);
    assert!(settings.enabled);
    assert!(matches!(settings.schedule, Schedule::Every(d) if d == Duration::from_secs(300)));
}

#[test]
fn a_full_file_is_read() {
    let config = parse(
        r#"
        reporting_timezone = "America/New_York"
        [database]
        max_connections = 8
        lock_timeout = "2s"
        [partitions]
        premake_months = 6
        [refresh]
        shutdown_grace = "1m"
        [aggregates.daily_event_counts]
        schedule = "*/30 * * * * *"
        [aggregates.daily_campaign_metrics]
        every = "90s"
        enabled = false
        "#,
    )
    .unwrap();
    assert_eq!(config.reporting_timezone.name(), "America/New_York");
    assert_eq!(config.database.max_connections, 8);
    assert_eq!(config.partitions.premake_months, 6);
    assert_eq!(config.refresh.shutdown_grace.0, Duration::from_secs(60));
    assert!(matches!(config.aggregate("daily_event_counts").unwrap().schedule, Schedule::Cron(_)));
    let metrics = config.aggregate("daily_campaign_metrics").unwrap();
    assert!(!metrics.enabled);
    assert!(matches!(metrics.schedule, Schedule::Every(d) if d == Duration::from_secs(90)));
}

#[test]
fn unknown_keys_are_named() {
    let text = error_text("[partitions]\npremake_month = 3\n");
    assert!(text.contains("tally.toml"), "{text}");
    assert!(text.contains("premake_month"), "{text}");
    assert!(text.contains("unknown field"), "{text}");
}

#[test]
fn wrong_types_are_named() {
    let text = error_text("[database]\nmax_connections = \"five\"\n");
    assert!(text.contains("max_connections"), "{text}");
}

#[test]
fn bad_durations_are_named() {
    let text = error_text("[database]\nlock_timeout = \"5 parsecs\"\n");
    assert!(text.contains("lock_timeout"), "{text}");
    assert!(text.contains("`5 parsecs` is not a duration"), "{text}");
}

#[test]
fn bad_cron_is_named_with_its_key() {
    let text = error_text("[aggregates.daily_event_counts]\nschedule = \"*/5 * * * *\"\n");
    assert!(text.contains("`aggregates.daily_event_counts.schedule`"), "{text}");
    assert!(text.contains("6 fields"), "{text}");
    let text = error_text("[partitions]\nmaintenance_schedule = \"hourly\"\n");
    assert!(text.contains("`partitions.maintenance_schedule`"), "{text}");
}

#[test]
fn unknown_aggregates_are_named_with_the_known_ones() {
    let text = error_text("[aggregates.daily_revenue]\nenabled = false\n");
    assert!(text.contains("`aggregates.daily_revenue`"), "{text}");
    assert!(text.contains("daily_campaign_metrics"), "{text}");
}

#[test]
fn views_take_no_settings() {
    let text = error_text("[aggregates.campaign_performance]\nevery = \"1m\"\n");
    assert!(text.contains("`aggregates.campaign_performance`"), "{text}");
    assert!(text.contains("plain view"), "{text}");
    assert!(Config::load(None).unwrap().aggregate("campaign_performance").is_none());
}

#[test]
fn unknown_timezones_are_rejected() {
    let text = error_text("reporting_timezone = \"Mars/Olympus\"\n");
    assert!(text.contains("unknown timezone `Mars/Olympus`"), "{text}");
}

#[test]
fn schedule_and_every_are_exclusive() {
    let text = error_text("[aggregates.daily_event_counts]\nschedule = \"0 * * * * *\"\nevery = \"1m\"\n");
    assert!(text.contains("not both"), "{text}");
}

#[test]
fn zero_values_are_rejected() {
    let text = error_text("[refresh]\nmax_concurrent = 0\n");
    assert!(text.contains("`refresh.max_concurrent`: must be at least 1"), "{text}");
    let text = error_text("attribution_half_life_days = 0\n");
    assert!(text.contains("`attribution_half_life_days`: must be at least 1"), "{text}");
    let text = error_text("attribution_half_life_days = 4000\n");
    assert!(text.contains("`attribution_half_life_days`: must be at most 3650"), "{text}");
    let text = error_text("attribution_half_life_days = 1.5\n");
    assert!(text.contains("attribution_half_life_days"), "{text}");
    assert_eq!(parse("attribution_half_life_days = 14\n").unwrap().attribution_half_life_days, 14);
}

#[test]
fn partition_settings_are_validated() {
    let config = parse("[partitions]\nretention_months = 12\nextra_tables = [\"marketing.ad_clicks\"]\n").unwrap();
    assert_eq!(config.partitions.retention_months, Some(12));
    assert_eq!(config.partitions.rescue_batch_rows, 10_000);
    let text = error_text("[partitions]\nretention_months = 0\n");
    assert!(text.contains("`partitions.retention_months`: must be at least 1"), "{text}");
    for bad in ["public.clicks", "marketing.Clicks", "marketing.events", "marketing.", "marketing.a;drop"] {
        let text = error_text(&format!("[partitions]\nextra_tables = [\"{bad}\"]\n"));
        assert!(text.contains("`partitions.extra_tables[0]`"), "{bad}: {text}");
    }
    let text = error_text("[partitions]\nextra_tables = [\"marketing.a\", \"marketing.a\"]\n");
    assert!(text.contains("listed twice"), "{text}");
}

#[test]
fn modes_are_read_and_unknown_ones_rejected() {
    let config = parse("[aggregates.daily_event_counts]\nmode = \"incremental\"\n").unwrap();
    assert_eq!(config.aggregate("daily_event_counts").unwrap().mode, Mode::Incremental);
    let text = error_text("[aggregates.daily_event_counts]\nmode = \"eventually\"\n");
    assert!(text.contains("unknown variant `eventually`"), "{text}");
}

#[test]
fn a_missing_file_names_the_path() {
    let err = Config::load(Some(Path::new("/nonexistent/tally.toml"))).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/tally.toml"), "{err}");
    assert!(err.contains("TALLY_CONFIG"), "{err}");
}
