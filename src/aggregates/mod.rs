//! The registry of aggregates: every daily rollup tally maintains, its SQL
//! definition (`sql/aggregates/*.sql`), its unique key, how a source row
//! maps to its days (its [`DirtyRule`]s, from which the tables it reads, the
//! invalidation triggers and the claims of incremental mode are derived) and
//! the aggregates it reads. Names from config are checked against it.
//!
//! How to add an aggregate: docs/aggregates.md ("Adding an aggregate").

mod build;
pub mod catalog;
pub mod concurrently;
pub mod declared;
pub mod features;
pub mod hierarchy;
pub mod incremental;
pub mod live;
mod outcome;
pub mod period;
pub mod rules;
pub mod triggers;
pub mod views;

pub use features::Features;
pub use outcome::{ModeError, RefreshKind};
pub use period::Period;
pub use rules::{DayIn, DirtyRule, LiveKey};

use crate::config::Config;

/// How an aggregate is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Materialized and refreshed on a schedule (mode `concurrently`).
    Rollup,
    /// A plain view over other aggregates: always as fresh as they are,
    /// never refreshed itself, (re)created whenever they are.
    View,
}

/// One aggregate in `reporting`. Static data; the registry below is the only
/// place tally's aggregates are defined (a test defines one of its own the
/// same way).
#[derive(Debug)]
pub struct Aggregate {
    /// The relation name in `reporting`, also the name used in config and metrics.
    pub name: &'static str,
    pub kind: Kind,
    /// One line for `tally status` and the docs.
    pub description: &'static str,
    /// The SELECT that defines it (a file under `sql/aggregates/`), with
    /// `{{tz}}` for the reporting timezone, `{{lookback_days}}` for the
    /// attribution lookback, `{{half_life_days}}` for the time-decay
    /// half-life, `{{scope}}` for the days being recomputed and
    /// the touch-window calls of [`rules::expand_touch_window`].
    pub sql: &'static str,
    /// Columns of its unique key (one row per key), in index order.
    pub key: &'static [&'static str],
    /// Other aggregates it reads; they are refreshed first.
    pub depends_on: &'static [&'static str],
    /// The source column whose day is the aggregate's day: what the
    /// `{{scope}}` placeholder restricts when only some days are recomputed.
    pub scope_column: &'static str,
    /// The scope column is a calendar date (not a timestamp to convert).
    pub scope_is_date: bool,
    /// What dirties a day in incremental mode: one rule per way a source
    /// row maps to days. The raw tables it reads are those of its rules. A
    /// rollup of rollups has none: the rollup it reads marks it
    /// ([`hierarchy`]).
    pub dirtied_by: &'static [DirtyRule],
    /// The column a live read of a day written by small statements may
    /// narrow its recomputation to ([`LiveKey`]); the day's source rows are
    /// those of its first rule.
    pub live_key: Option<LiveKey>,
    /// The period of a row: its key's first column (`day`, `week`, `month`),
    /// what incremental mode deletes and rewrites whole.
    pub period: Period,
    /// It reads visitor sketches (`hll`): without the extension it is not
    /// built (SPEC §4.1).
    pub needs_sketches: bool,
    /// Declared in the config (SPEC §10): its SELECT as read, from which
    /// the scoped definitions are written; `None` for tally's own, whose
    /// `sql` is a template.
    pub declared: Option<&'static declared::Declared>,
}

/// Every aggregate tally knows, in dependency order.
pub static REGISTRY: &[Aggregate] = &[
    Aggregate {
        name: "daily_campaign_metrics",
        kind: Kind::Rollup,
        description: "events, page views, visitors, sessions, signups, purchases and revenue per day and campaign",
        sql: include_str!("../../sql/aggregates/daily_campaign_metrics.sql"),
        key: &["day", "utm_source", "utm_medium", "utm_campaign"],
        depends_on: &[],
        scope_column: "e.occurred_at",
        scope_is_date: false,
        dirtied_by: &[DirtyRule::DayOf { table: "marketing.events", column: "occurred_at", day: DayIn::ReportingZone }],
        live_key: Some(LiveKey { column: "utm_campaign", source: "utm_campaign", none_if_empty: true }),
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
    Aggregate {
        name: "daily_event_counts",
        kind: Kind::Rollup,
        description: "events and visitors per day and event name",
        sql: include_str!("../../sql/aggregates/daily_event_counts.sql"),
        key: &["day", "event"],
        depends_on: &[],
        scope_column: "e.occurred_at",
        scope_is_date: false,
        dirtied_by: &[DirtyRule::DayOf { table: "marketing.events", column: "occurred_at", day: DayIn::ReportingZone }],
        live_key: Some(LiveKey { column: "event", source: "event", none_if_empty: false }),
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
    Aggregate {
        name: "daily_lead_funnel",
        kind: Kind::Rollup,
        description: "leads created, qualified, converted and their average score per day, source and campaign",
        sql: include_str!("../../sql/aggregates/daily_lead_funnel.sql"),
        key: &["day", "source", "campaign"],
        depends_on: &[],
        scope_column: "l.created_at",
        scope_is_date: false,
        dirtied_by: &[DirtyRule::DayOf { table: "marketing.leads", column: "created_at", day: DayIn::ReportingZone }],
        live_key: None,
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
    Aggregate {
        name: "daily_attribution",
        kind: Kind::Rollup,
        description: "conversions and revenue credited by the first_touch, last_touch, linear, time_decay and position_based models",
        sql: include_str!("../../sql/aggregates/daily_attribution.sql"),
        key: &["day", "model", "utm_source", "utm_campaign"],
        depends_on: &[],
        scope_column: "c.occurred_at",
        scope_is_date: false,
        dirtied_by: &[
            DirtyRule::DayOf { table: "marketing.conversions", column: "occurred_at", day: DayIn::ReportingZone },
            DirtyRule::TouchWindow,
            // A lead whose source, campaign or user changes: the days of its conversions.
            DirtyRule::Joined {
                table: "marketing.leads",
                column: "id",
                fact: "marketing.conversions",
                fact_column: "lead_id",
                fact_day: "occurred_at",
                day: DayIn::ReportingZone,
                watched: &["source", "campaign", "user_id"],
            },
        ],
        live_key: None,
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
    Aggregate {
        name: "daily_campaign_spend",
        kind: Kind::Rollup,
        description: "spend, impressions and clicks per day and campaign, as reported by the ad platforms",
        sql: include_str!("../../sql/aggregates/daily_campaign_spend.sql"),
        key: &["day", "utm_source", "utm_campaign"],
        depends_on: &[],
        scope_column: "s.day",
        scope_is_date: true,
        dirtied_by: &[DirtyRule::DayOf { table: "marketing.campaign_spend", column: "day", day: DayIn::Date }],
        live_key: None,
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
    Aggregate {
        name: "weekly_campaign_metrics",
        kind: Kind::Rollup,
        description: "daily_campaign_metrics per ISO week (from Monday, in the reporting timezone), visitors from the unioned sketches",
        sql: include_str!("../../sql/aggregates/campaign_metrics_by_period.sql"),
        key: &["week", "utm_source", "utm_medium", "utm_campaign"],
        depends_on: &["daily_campaign_metrics"],
        scope_column: "d.day",
        scope_is_date: true,
        dirtied_by: &[],
        live_key: None,
        period: Period::Week,
        needs_sketches: true,
        declared: None,
    },
    Aggregate {
        name: "monthly_campaign_metrics",
        kind: Kind::Rollup,
        description: "daily_campaign_metrics per month, visitors from the unioned sketches",
        sql: include_str!("../../sql/aggregates/campaign_metrics_by_period.sql"),
        key: &["month", "utm_source", "utm_medium", "utm_campaign"],
        depends_on: &["daily_campaign_metrics"],
        scope_column: "d.day",
        scope_is_date: true,
        dirtied_by: &[],
        live_key: None,
        period: Period::Month,
        needs_sketches: true,
        declared: None,
    },
    Aggregate {
        name: "campaign_performance",
        kind: Kind::View,
        description: "spend, visitors, conversions, revenue, CPA, ROAS and CTR per day and campaign",
        sql: include_str!("../../sql/aggregates/campaign_performance.sql"),
        key: &["day", "utm_source", "utm_campaign"],
        depends_on: &["daily_campaign_metrics", "daily_attribution", "daily_campaign_spend"],
        scope_column: "",
        scope_is_date: false,
        dirtied_by: &[],
        live_key: None,
        period: Period::Day,
        needs_sketches: false,
        declared: None,
    },
];

impl Aggregate {
    /// `reporting.<name>`, quoted.
    pub fn qualified_name(&self) -> String {
        format!("reporting.{}", crate::db::quote_ident(self.name))
    }

    /// The defining SELECT over all days, with the configured settings filled
    /// in: the timezone (validated against the IANA database at config load,
    /// quoted as a literal), the lookback and half-life (integers), and the
    /// visitor sketches when the server has them.
    pub fn definition(&self, config: &Config, features: Features) -> String {
        self.scoped_definition(config, features, "true")
    }

    /// The defining SELECT restricted by `scope`, a condition on
    /// [`Aggregate::scope_column`] that tally builds from dates it formats itself.
    pub fn scoped_definition(&self, config: &Config, features: Features, scope: &str) -> String {
        self.narrowed_definition(config, features, scope, "true")
    }

    /// The defining SELECT for exactly the rows of `days` (an incremental
    /// rewrite): [`Aggregate::scoped_definition`] with their ranges, and for
    /// attribution the touches narrowed to the days' lookback windows
    /// ([`incremental::touch_scope`]), so that the partitions of events no
    /// conversion of those days can reach are pruned when it is planned.
    pub fn days_definition(&self, config: &Config, features: Features, days: &[chrono::NaiveDate]) -> String {
        let tz = config.reporting_timezone.sql_literal();
        let touches = incremental::touch_scope("e.occurred_at", &tz, days, config.attribution_lookback_days);
        self.narrowed_definition(config, features, &self.days_scope(&tz, days), &touches)
    }

    /// The condition on [`Aggregate::scope_column`] selecting the rows of
    /// `days` (`tz`: the reporting timezone literal; a declared aggregate's
    /// day has its own zone).
    fn days_scope(&self, tz: &str, days: &[chrono::NaiveDate]) -> String {
        match self.scope_is_date {
            true => incremental::date_scope(self.scope_column, days),
            false => incremental::scope(self.scope_column, &self.scope_zone(tz), days),
        }
    }

    /// The zone of the scope column's days as an SQL literal: the
    /// declared one, or `reporting_tz` (the reporting timezone literal).
    pub fn scope_zone(&self, reporting_tz: &str) -> String {
        self.declared.and_then(|d| d.zone_literal()).unwrap_or_else(|| reporting_tz.to_string())
    }

    /// The defining SELECT for the rows of `whole` days and, of the `keyed`
    /// days, the rows whose live key value is in the text array `$1` (an
    /// incremental rewrite of keyed marks). [`Aggregate::days_definition`]
    /// when the aggregate has no live key.
    pub fn keyed_definition(
        &self,
        config: &Config,
        features: Features,
        whole: &[chrono::NaiveDate],
        keyed: &[chrono::NaiveDate],
    ) -> String {
        let mut all: Vec<chrono::NaiveDate> = whole.iter().chain(keyed).copied().collect();
        all.sort();
        let Some(key) = self.live_key_expression().filter(|_| !keyed.is_empty()) else {
            return self.days_definition(config, features, &all);
        };
        let tz = config.reporting_timezone.sql_literal();
        let scope = format!(
            "({} OR ({} AND {key} = ANY ($1::text[])))",
            self.days_scope(&tz, whole),
            self.days_scope(&tz, keyed)
        );
        let touches = incremental::touch_scope("e.occurred_at", &tz, &all, config.attribution_lookback_days);
        self.narrowed_definition(config, features, &scope, &touches)
    }

    /// The live key's value for a source row of the definition (whose alias
    /// is that of the scope column), as SQL; `None` without a live key.
    pub fn live_key_expression(&self) -> Option<String> {
        let alias = self.scope_column.split('.').next().unwrap_or("e");
        self.live_key.map(|key| key.expression(alias))
    }

    /// `touch_scope`: a condition on the touches (`e`) that the touch window
    /// implies for the conversions of `scope`; `true` when there is none.
    fn narrowed_definition(&self, config: &Config, features: Features, scope: &str, touch_scope: &str) -> String {
        if let Some(declared) = self.declared {
            return declared.scoped(scope);
        }
        // log2m 14: about 0.8% standard error (SPEC §4.1).
        let sketch =
            if features.sketches { ",\n    hll_add_agg(hll_hash_text(e.user_id), 14) AS visitors_hll" } else { "" };
        rules::expand_touch_window(self.sql, config.attribution_lookback_days)
            .replace("{{tz}}", &config.reporting_timezone.sql_literal())
            .replace("{{lookback_days}}", &config.attribution_lookback_days.to_string())
            .replace("{{half_life_days}}", &config.attribution_half_life_days.to_string())
            .replace("{{visitors_hll}}", sketch)
            .replace("{{period}}", self.period.column())
            .replace("{{scope}}", scope)
            .replace("{{touch_scope}}", touch_scope)
    }

    /// The raw tables it reads (those its dirty rules watch), in order.
    pub fn sources(&self) -> Vec<&'static str> {
        let mut tables: Vec<&'static str> = Vec::new();
        for rule in self.dirtied_by {
            if !tables.contains(&rule.table()) {
                tables.push(rule.table());
            }
        }
        tables
    }

    /// The aggregates of `config` (views, rollups of rollups, declared
    /// aggregates) that read this one.
    pub fn dependents<'a>(&'a self, config: &'a Config) -> impl Iterator<Item = &'static Aggregate> + 'a {
        config.registry().iter().copied().filter(move |a| a.depends_on.contains(&self.name))
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

/// The named aggregates of `registry` (in dependency order), with what
/// they read (transitively), ordered so that each comes after the
/// aggregates it reads. Unknown names are returned as the error, all of them.
pub fn in_dependency_order(
    registry: &[&'static Aggregate],
    names: &[String],
) -> Result<Vec<&'static Aggregate>, Vec<String>> {
    let find = |name: &str| registry.iter().copied().find(|a| a.name == name);
    let unknown: Vec<String> = names.iter().filter(|n| find(n).is_none()).cloned().collect();
    if !unknown.is_empty() {
        return Err(unknown);
    }
    let mut wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut index = 0;
    while index < wanted.len() {
        let dependencies = find(wanted[index]).map_or(&[][..], |a| a.depends_on);
        for dependency in dependencies {
            if !wanted.contains(dependency) {
                wanted.push(dependency);
            }
        }
        index += 1;
    }
    // The registry is in dependency order (a test holds REGISTRY to that;
    // declared aggregates are ordered when the config is read), so
    // filtering it keeps the order.
    Ok(registry.iter().copied().filter(|a| wanted.contains(&a.name)).collect())
}

#[cfg(test)]
mod tests;
