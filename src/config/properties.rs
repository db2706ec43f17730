//! Property tests of the config loader: no file makes it panic, and every
//! rejection names the file or the key and says what is wrong.

use std::path::Path;

use proptest::prelude::*;

use super::*;

/// A value as TOML writes it: strings (durations, cron, names), numbers, booleans.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>().prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        "[0-9]{1,4}(ms|s|m|h|d| parsecs|)".prop_map(|s| format!("{s:?}")),
        Just("\"*/5 * * * * *\"".to_string()),
        Just("\"0 0 3 * * *\"".to_string()),
        Just("\"incremental\"".to_string()),
        Just("\"America/New_York\"".to_string()),
    ]
}

fn section() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("[database]\n".to_string()),
        Just("[partitions]\n".to_string()),
        Just("[refresh]\n".to_string()),
        Just("[aggregates.daily_campaign_metrics]\n".to_string()),
        Just("[aggregates.daily_attribution]\n".to_string()),
        Just("[aggregates.no_such_aggregate]\n".to_string()),
        "\\[[a-z_.]{1,20}\\]\n".prop_map(|s| s),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("reporting_timezone"),
        Just("attribution_lookback_days"),
        Just("attribution_half_life_days"),
        Just("max_connections"),
        Just("statement_timeout"),
        Just("lock_timeout"),
        Just("premake_months"),
        Just("retention_months"),
        Just("max_concurrent"),
        Just("max_attempts"),
        Just("history_days"),
        Just("mode"),
        Just("schedule"),
        Just("every"),
        Just("enabled"),
        Just("colour"),
    ]
    .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_loaded_or_rejected_naming_the_file(text in any::<String>()) {
        if let Err(error) = Config::from_toml(&text, Path::new("tally.toml")) {
            prop_assert!(error.to_string().contains("tally.toml"), "{}", error);
        }
    }

    #[test]
    fn any_setting_is_accepted_or_rejected_naming_it(
        entries in prop::collection::vec((section(), key(), toml_value()), 1..4)
    ) {
        let text: String = entries.iter().map(|(s, k, v)| format!("{s}{k} = {v}\n")).collect();
        if let Err(error) = Config::from_toml(&text, Path::new("tally.toml")) {
            let message = error.to_string();
            prop_assert!(message.contains("tally.toml"), "{}", message);
            // The message points at what to change: a key or section of the file, or the TOML syntax.
            let named = entries.iter().any(|(section, key, _)| {
                let section = section.trim().trim_matches(|c| c == '[' || c == ']');
                message.contains(key.as_str()) || (!section.is_empty() && message.contains(section))
            }) || message.contains("line");
            prop_assert!(named, "{} for:\n{}", message, text);
        }
    }
}
