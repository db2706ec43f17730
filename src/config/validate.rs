//! Validation of the configuration file: every rule that types alone cannot
//! express, each failure naming the key and what to write instead.

use std::collections::BTreeMap;

use super::values::{MAX_DURATION, check_pg_timeout};
use super::{AggregateConfig, AggregateSettings, Config, ConfigError, ConfigFile, DEFAULT_REFRESH_INTERVAL, Schedule};
use std::path::Path;

use crate::aggregates::{self, Aggregate, Kind, declared};
use crate::config::Mode;

impl ConfigFile {
    /// `base`: the directory declared aggregates' SQL files are relative to.
    pub(super) fn validate(self, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            reason,
        };
        let lookback = self.attribution_lookback_days.unwrap_or(30);
        let half_life = self.attribution_half_life_days.unwrap_or(7);
        // Upper bounds far above any real use, and below what would
        // overflow where the value goes (a pool's slots, month arithmetic,
        // an SQL interval, an i32 day count) or retry a failure for ever.
        let bounded = [
            ("database.max_connections", self.database.max_connections, 1, 1_000),
            ("refresh.max_concurrent", self.refresh.max_concurrent, 1, 100),
            ("refresh.max_attempts", self.refresh.max_attempts, 1, 100),
            ("refresh.history_days", self.refresh.history_days, 1, 36_500),
            ("attribution_lookback_days", lookback, 1, 3_650),
            ("attribution_half_life_days", half_life, 1, 3_650),
            ("partitions.premake_months", self.partitions.premake_months, 0, 120),
            ("partitions.rescue_batch_rows", self.partitions.rescue_batch_rows, 1, 10_000_000),
        ];
        for (key, value, min, max) in bounded {
            if value < min {
                return Err(invalid(key, format!("must be at least {min}")));
            }
            if value > max {
                return Err(invalid(key, format!("must be at most {max}")));
            }
        }
        match self.partitions.retention_months {
            Some(0) => {
                return Err(invalid(
                    "partitions.retention_months",
                    "must be at least 1 (the current month is never retired); remove the key to keep everything"
                        .to_string(),
                ));
            }
            Some(months) if months > 1_200 => {
                return Err(invalid(
                    "partitions.retention_months",
                    "must be at most 1200 (100 years); remove the key to keep everything".to_string(),
                ));
            }
            _ => {}
        }
        for (index, table) in self.partitions.extra_tables.iter().enumerate() {
            let key = format!("partitions.extra_tables[{index}]");
            let name = table.strip_prefix("marketing.").unwrap_or_default();
            let simple = name.chars().next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            // Partition names add `_pYYYY_MM` (9 characters) and must fit
            // PostgreSQL's 63, or every month truncates to the same name.
            if name.len() > 54 {
                return Err(invalid(
                    &key,
                    format!(
                        "`{table}`: the table name is longer than 54 characters, so its partitions' names would not fit PostgreSQL's 63"
                    ),
                ));
            }
            if !simple || name == "events" {
                return Err(invalid(
                    &key,
                    format!(
                        "`{table}` is not a table tally can manage; write \"marketing.NAME\" with a lowercase \
                         unquoted NAME (marketing.events is always managed)"
                    ),
                ));
            }
            if self.partitions.extra_tables[..index].contains(table) {
                return Err(invalid(&key, format!("`{table}` is listed twice")));
            }
        }
        let durations = [
            ("database.statement_timeout", self.database.statement_timeout.0, true),
            ("database.lock_timeout", self.database.lock_timeout.0, true),
            ("database.connect_timeout", self.database.connect_timeout.0, false),
            ("refresh.shutdown_grace", self.refresh.shutdown_grace.0, false),
        ];
        for (key, value, postgres) in durations {
            let checked = match postgres {
                true => check_pg_timeout(value),
                false => MAX_DURATION.check(value, &humantime::format_duration(value).to_string()),
            };
            checked.map_err(|reason| invalid(key, reason))?;
        }
        let maintenance_schedule = Schedule::cron(&self.partitions.maintenance_schedule)
            .map_err(|reason| invalid("partitions.maintenance_schedule", reason))?;

        for (name, file) in &self.aggregates {
            let section = format!("aggregates.{name}");
            match aggregates::find(name) {
                None if file.sql.is_none() => {
                    return Err(invalid(
                        &section,
                        format!(
                            "no aggregate named `{name}`; known aggregates: {}; to declare your own, give \
                             `sql = \"{name}.sql\"` (a file holding one SELECT, docs/your-aggregates.md)",
                            aggregates::names().join(", ")
                        ),
                    ));
                }
                None => declared::check_name(name).map_err(|reason| invalid(&section, reason))?,
                Some(_) if file.sql.is_some() || file.key.is_some() => {
                    return Err(invalid(
                        &format!("{section}.{}", if file.sql.is_some() { "sql" } else { "key" }),
                        format!(
                            "`{name}` is one of tally's own aggregates, whose definition is tally's; declare yours \
                             under another name"
                        ),
                    ));
                }
                Some(view) if view.kind == Kind::View => {
                    return Err(invalid(
                        &section,
                        format!(
                            "`{name}` is a plain view over {}: always as fresh as they are, it has no mode or \
                             schedule; remove this section",
                            view.depends_on.join(" and ")
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let declared_names: Vec<&str> =
            self.aggregates.iter().filter(|(_, f)| f.sql.is_some()).map(|(n, _)| n.as_str()).collect();
        let is_aggregate = |name: &str| aggregates::find(name).is_some() || declared_names.contains(&name);
        let mut declared = Vec::new();
        for (name, file) in self.aggregates.iter().filter(|(_, f)| f.sql.is_some()) {
            let path = base.join(file.sql.as_deref().unwrap_or(Path::new("")));
            let incremental = file.mode == Mode::Incremental;
            let aggregate = declared::declare(name, &path, file.key.as_deref(), incremental, &is_aggregate)
                .map_err(|e| invalid(&format!("aggregates.{name}.sql"), e.to_string()))?;
            declared.push(aggregate);
        }
        let mut registry: Vec<&'static Aggregate> = aggregates::REGISTRY.iter().collect();
        registry.extend(in_dependency_order(declared).map_err(|names| {
            invalid(
                &format!("aggregates.{}.sql", names[0]),
                format!("the aggregates {} read each other in a cycle: one must read raw tables", names.join(", ")),
            )
        })?);
        let mut resolved = BTreeMap::new();
        for aggregate in registry.iter().filter(|a| a.kind == Kind::Rollup) {
            let settings = match self.aggregates.get(aggregate.name) {
                None => AggregateSettings::default(),
                Some(file) => resolve_aggregate(file)
                    .map_err(|(field, reason)| invalid(&format!("aggregates.{}.{field}", aggregate.name), reason))?,
            };
            resolved.insert(aggregate.name, settings);
        }
        Ok(Config {
            reporting_timezone: self.reporting_timezone,
            attribution_lookback_days: lookback,
            attribution_half_life_days: half_life,
            database: self.database,
            partitions: self.partitions,
            refresh: self.refresh,
            maintenance_schedule,
            aggregates: resolved,
            registry,
        })
    }
}

fn resolve_aggregate(file: &AggregateConfig) -> Result<AggregateSettings, (&'static str, String)> {
    let schedule = match (&file.schedule, file.every) {
        (Some(_), Some(_)) => {
            return Err(("every", "set either `schedule` or `every`, not both".to_string()));
        }
        (Some(cron), None) => Schedule::cron(cron).map_err(|r| ("schedule", r))?,
        (None, Some(every)) => Schedule::every(every).map_err(|r| ("every", r))?,
        (None, None) => Schedule::Every(DEFAULT_REFRESH_INTERVAL),
    };
    Ok(AggregateSettings { mode: file.mode, schedule, enabled: file.enabled })
}

/// Declared aggregates, each after the declared ones it reads (tally's own
/// come first anyway); the names in a cycle as the error.
fn in_dependency_order(mut pending: Vec<&'static Aggregate>) -> Result<Vec<&'static Aggregate>, Vec<&'static str>> {
    let mut ordered: Vec<&'static Aggregate> = Vec::new();
    while !pending.is_empty() {
        let ready = |a: &&'static Aggregate| {
            a.depends_on.iter().all(|d| aggregates::find(d).is_some() || ordered.iter().any(|o| o.name == *d))
        };
        let (now, later): (Vec<&'static Aggregate>, Vec<&'static Aggregate>) = pending.into_iter().partition(ready);
        if now.is_empty() {
            return Err(later.iter().map(|a| a.name).collect());
        }
        ordered.extend(now);
        pending = later;
    }
    Ok(ordered)
}
