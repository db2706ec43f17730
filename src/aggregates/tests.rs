//! The registry: dependency order, names, and the settings in definitions.

use super::*;

#[test]
fn registry_is_in_dependency_order_and_names_are_unique() {
    for (index, aggregate) in REGISTRY.iter().enumerate() {
        for dependency in aggregate.depends_on {
            let position = REGISTRY.iter().position(|a| a.name == *dependency);
            assert!(
                matches!(position, Some(p) if p < index),
                "{} reads {dependency}, which must come before it",
                aggregate.name
            );
        }
        assert_eq!(REGISTRY.iter().filter(|a| a.name == aggregate.name).count(), 1);
        assert!(aggregate.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    }
}

fn builtins() -> Vec<&'static Aggregate> {
    REGISTRY.iter().collect()
}

#[test]
fn unknown_names_are_all_reported() {
    let err =
        in_dependency_order(&builtins(), &["daily_event_counts".into(), "nope".into(), "nada".into()]).unwrap_err();
    assert_eq!(err, vec!["nope".to_string(), "nada".to_string()]);
    let order =
        in_dependency_order(&builtins(), &["daily_event_counts".into(), "daily_campaign_metrics".into()]).unwrap();
    assert_eq!(order.iter().map(|a| a.name).collect::<Vec<_>>(), ["daily_campaign_metrics", "daily_event_counts"]);
    let view = in_dependency_order(&builtins(), &["campaign_performance".into()]).unwrap();
    assert_eq!(
        view.iter().map(|a| a.name).collect::<Vec<_>>(),
        ["daily_campaign_metrics", "daily_attribution", "daily_campaign_spend", "campaign_performance"],
        "a view brings the aggregates it reads, first"
    );
}

#[test]
fn aggregates_read_only_rollups_of_raw_data() {
    for aggregate in REGISTRY {
        for dependency in aggregate.depends_on {
            let read = find(dependency).unwrap();
            assert_eq!(read.kind, Kind::Rollup, "{}", aggregate.name);
            assert!(read.depends_on.is_empty(), "{} reads {dependency}, itself built from rollups", aggregate.name);
        }
        // A rollup of rollups is marked by the rollup it reads, never by triggers.
        if aggregate.kind == Kind::Rollup && !aggregate.depends_on.is_empty() {
            assert!(aggregate.dirtied_by.is_empty(), "{}", aggregate.name);
            assert_eq!(aggregate.depends_on.len(), 1, "{}", aggregate.name);
        }
        if aggregate.kind == Kind::Rollup {
            assert_eq!(aggregate.key[0], aggregate.period.column(), "{}", aggregate.name);
        }
    }
    let readers: Vec<&str> =
        find("daily_attribution").unwrap().dependents(&Config::load(None).unwrap()).map(|a| a.name).collect();
    assert_eq!(readers, ["campaign_performance"]);
    let readers: Vec<&str> =
        find("daily_campaign_metrics").unwrap().dependents(&Config::load(None).unwrap()).map(|a| a.name).collect();
    assert_eq!(readers, ["weekly_campaign_metrics", "monthly_campaign_metrics", "campaign_performance"]);
}

#[test]
fn settings_are_substituted() {
    let config = Config::from_toml("attribution_lookback_days = 7", std::path::Path::new("t.toml")).unwrap();
    let sql = find("daily_attribution").unwrap().definition(&config, Features::default());
    assert!(sql.contains("e.occurred_at > cv.occurred_at - make_interval(days => 7)"), "{sql}");
    assert!(!sql.contains("{{"));
}

#[test]
fn the_timezone_is_substituted_as_a_literal() {
    let config =
        Config::from_toml("reporting_timezone = \"America/New_York\"", std::path::Path::new("t.toml")).unwrap();
    let sql = find("daily_event_counts").unwrap().definition(&config, Features::default());
    assert!(sql.contains("AT TIME ZONE 'America/New_York'"), "{sql}");
    assert!(!sql.contains("{{"));
}
