//! The registry of aggregates: every daily rollup tally maintains, its SQL
//! definition (`sql/aggregates/*.sql`), its unique key, the tables it reads
//! and the aggregates it reads. Names from config are checked against it.

pub mod concurrently;

use crate::config::Config;

/// One aggregate in `reporting`. Static data; the registry below is the only
/// place they are defined.
#[derive(Debug)]
pub struct Aggregate {
    /// The relation name in `reporting`, also the name used in config and metrics.
    pub name: &'static str,
    /// One line for `tally status` and the docs.
    pub description: &'static str,
    /// The SELECT that defines it, with `{{tz}}` for the reporting timezone.
    definition: &'static str,
    /// Columns of its unique key (one row per key), in index order.
    pub key: &'static [&'static str],
    /// Raw tables it reads.
    pub sources: &'static [&'static str],
    /// Other aggregates it reads; they are refreshed first.
    pub depends_on: &'static [&'static str],
}

/// Every aggregate tally knows, in dependency order.
pub static REGISTRY: &[Aggregate] = &[
    Aggregate {
        name: "daily_campaign_metrics",
        description: "events, visitors, sessions, signups, purchases and revenue per day and campaign",
        definition: include_str!("../../sql/aggregates/daily_campaign_metrics.sql"),
        key: &["day", "utm_source", "utm_medium", "utm_campaign"],
        sources: &["marketing.events"],
        depends_on: &[],
    },
    Aggregate {
        name: "daily_event_counts",
        description: "events and visitors per day and event name",
        definition: include_str!("../../sql/aggregates/daily_event_counts.sql"),
        key: &["day", "event"],
        sources: &["marketing.events"],
        depends_on: &[],
    },
];

impl Aggregate {
    /// `reporting.<name>`, quoted.
    pub fn qualified_name(&self) -> String {
        format!("reporting.{}", crate::db::quote_ident(self.name))
    }

    /// The defining SELECT with the configured settings filled in. The only
    /// substituted value is the timezone, validated against the IANA database
    /// at config load and quoted as a literal.
    pub fn definition(&self, config: &Config) -> String {
        self.definition.replace("{{tz}}", &config.reporting_timezone.sql_literal())
    }
}

/// The aggregate with this name, if tally has one.
pub fn find(name: &str) -> Option<&'static Aggregate> {
    REGISTRY.iter().find(|a| a.name == name)
}

/// Every aggregate name, in registry order.
pub fn names() -> Vec<&'static str> {
    REGISTRY.iter().map(|a| a.name).collect()
}

/// The named aggregates ordered so that each comes after the aggregates it
/// reads. Unknown names are returned as the error, all of them.
pub fn in_dependency_order(names: &[String]) -> Result<Vec<&'static Aggregate>, Vec<String>> {
    let unknown: Vec<String> = names.iter().filter(|n| find(n).is_none()).cloned().collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    // REGISTRY is written in dependency order (a test holds it to that), so
    // filtering it keeps the order.
    Ok(REGISTRY.iter().filter(|a| names.iter().any(|n| n == a.name)).collect())
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn unknown_names_are_all_reported() {
        let err = in_dependency_order(&["daily_event_counts".into(), "nope".into(), "nada".into()]).unwrap_err();
        assert_eq!(err, vec!["nope".to_string(), "nada".to_string()]);
        let order = in_dependency_order(&["daily_event_counts".into(), "daily_campaign_metrics".into()]).unwrap();
        assert_eq!(order.iter().map(|a| a.name).collect::<Vec<_>>(), ["daily_campaign_metrics", "daily_event_counts"]);
    }

    #[test]
    fn the_timezone_is_substituted_as_a_literal() {
        let config =
            Config::from_toml("reporting_timezone = \"America/New_York\"", std::path::Path::new("t.toml")).unwrap();
        let sql = find("daily_event_counts").unwrap().definition(&config);
        assert!(sql.contains("AT TIME ZONE 'America/New_York'"), "{sql}");
        assert!(!sql.contains("{{"));
    }
}
