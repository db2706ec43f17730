//! Detectors that look at what a query aggregates: `use_aggregate`, a
//! dashboard-style query aggregating raw `marketing.events` where a
//! `reporting` aggregate already holds the answer. Suggested only when the aggregate can answer the query: every
//! column the query filters or groups on must be a key column of the
//! aggregate (or `occurred_at`, whose days are its `day`), and every aggregate
//! call must be one of its measures. A filter on `user_id` or `properties`,
//! or `count(DISTINCT user_id)` over several days (daily visitors do not add
//! up), gets no suggestion: pointing there would give different numbers.

mod days;
mod shape;
#[cfg(test)]
mod tests;
mod text;

pub use days::DayZones;

use crate::doctor::catalog::Catalog;
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::plan::Node;
use days::{Fit, Grain};
use shape::{Filter, Group, Measure, Shape};

/// What an aggregate holds, in the raw columns of `marketing.events`
/// (sql/aggregates/<name>.sql; a test holds the keys to the registry's).
struct Answers {
    name: &'static str,
    /// Raw columns that are key columns of the aggregate, besides `day`
    /// (the date of `occurred_at` in `reporting_timezone`).
    keys: &'static [&'static str],
    /// The rows of one event, counted in a measure of their own.
    event_measures: &'static [(&'static str, &'static str)],
    /// `count(DISTINCT column)` per day.
    distinct: &'static [(&'static str, &'static str)],
    /// One line for people.
    shape: &'static str,
}

/// The aggregates a raw events query may be pointed at, smallest first.
const ANSWERS: &[Answers] = &[
    Answers {
        name: "daily_event_counts",
        keys: &["event"],
        event_measures: &[],
        distinct: &[("user_id", "visitors")],
        shape: "one row per day and event with events and visitors",
    },
    Answers {
        name: "daily_campaign_metrics",
        keys: &["utm_source", "utm_medium", "utm_campaign"],
        event_measures: &[("page_view", "page_views"), ("signup", "signups"), ("purchase", "purchases")],
        distinct: &[("user_id", "visitors"), ("session_id", "sessions")],
        shape: "one row per day, utm_source, utm_medium and utm_campaign with events, page_views, visitors, \
                sessions, signups, purchases and revenue",
    },
];

/// Adds the `use_aggregate` finding when an aggregate in `reporting` answers
/// the query.
pub(super) fn use_aggregate(plan: &Node, catalog: &Catalog, findings: &mut Vec<Finding>) {
    let Some((node, shape)) = shape::read(plan, catalog, &catalog.days) else { return };
    let Some((aggregate, reading)) = ANSWERS
        .iter()
        .filter(|a| catalog.aggregates.iter().any(|name| name == a.name))
        .find_map(|a| answer(a, &shape, &catalog.days).ok().map(|reading| (a, reading)))
    else {
        return;
    };
    let by = if shape.group_text.is_empty() { String::new() } else { format!(" by {}", shape.group_text.join(", ")) };
    let problem = format!("this query aggregates raw marketing.events rows{by} on every run");
    let notes: String = reading.notes.iter().map(|n| format!("; {n}")).collect();
    let caveats = if reading.caveats.is_empty() {
        String::new()
    } else {
        format!("; it answers only approximately: {}", reading.caveats.join("; "))
    };
    let fix = format!(
        "read reporting.{} instead ({}, kept fresh by tally): {}; sum its rows over the days you need{notes}{caveats}",
        aggregate.name,
        aggregate.shape,
        reading.reads.join(", ")
    );
    let mut finding = Finding::at(Kind::UseAggregate, &node, problem, fix, Vec::new());
    finding.relation = Some(shape::EVENTS.to_string());
    findings.push(finding);
}

/// How an aggregate answers a query: what to read for each part of it,
/// what differs in its values, and where its whole days only approximate
/// the query.
#[derive(Debug, Default)]
struct Reading {
    reads: Vec<String>,
    notes: Vec<String>,
    caveats: Vec<String>,
}

impl Reading {
    fn read(&mut self, text: String) {
        push_once(&mut self.reads, text);
    }

    fn key(&mut self, column: &str) {
        self.read(format!("its {column} column"));
        if column.starts_with("utm_") {
            push_once(&mut self.notes, "there, missing and empty UTM values are '(none)'".into());
        }
    }

    fn days(&mut self, fit: &Fit) {
        self.read("its day column for occurred_at".into());
        if let Fit::Approximate(why) = fit {
            push_once(&mut self.caveats, format!("its days are whole days, and {why}"));
        }
    }
}

fn push_once(list: &mut Vec<String>, text: String) {
    if !list.contains(&text) {
        list.push(text);
    }
}

/// How `aggregate` answers `shape`, or the part of the query it cannot answer.
fn answer(aggregate: &Answers, shape: &Shape, zones: &DayZones) -> Result<Reading, String> {
    let lookup = |pairs: &[(&str, &'static str)], key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let mut reading = Reading::default();
    // `event = 'signup'` in daily_campaign_metrics: count(*) becomes sum(signups).
    let mut event_measure: Option<(&str, &str)> = None;
    for filter in &shape.filters {
        match filter {
            Filter::Column { column, .. } if aggregate.keys.contains(&column.as_str()) => reading.key(column),
            Filter::Column { column, equals: Some(value) } if column == "event" => {
                let measure = lookup(aggregate.event_measures, value).ok_or(format!("event = '{value}'"))?;
                event_measure = Some((measure, value));
            }
            Filter::Days(fit) => reading.days(fit),
            Filter::Column { column, .. } => return Err(format!("the filter on {column}")),
            Filter::Other(text) => return Err(format!("the filter {text}")),
        }
    }
    let mut per_day = false;
    for group in &shape.groups {
        match group {
            Group::Column(column) if aggregate.keys.contains(&column.as_str()) => reading.key(column),
            Group::Days { grain, zone } => {
                per_day |= *grain == Grain::Day;
                reading.days(&zones.fit(zone));
            }
            Group::Expression { columns, .. }
                if !columns.is_empty() && columns.iter().all(|c| aggregate.keys.contains(&c.as_str())) =>
            {
                columns.iter().for_each(|c| reading.key(c));
            }
            Group::Column(text) | Group::Expression { text, .. } => return Err(format!("GROUP BY {text}")),
        }
    }
    for measure in &shape.measures {
        match measure {
            Measure::Rows => reading.read(match event_measure {
                Some((measure, value)) => format!("sum({measure}) for count(*) WHERE event = '{value}'"),
                None => "sum(events) for count(*)".to_string(),
            }),
            Measure::RowsOfEvent(value) if event_measure.is_none() => {
                let of_event = format!("count(*) FILTER (WHERE event = '{value}')");
                match lookup(aggregate.event_measures, value) {
                    Some(column) => reading.read(format!("sum({column}) for {of_event}")),
                    None if aggregate.keys.contains(&"event") => {
                        reading.read(format!("sum(events) FILTER (WHERE event = '{value}') for {of_event}"))
                    }
                    None => return Err(of_event),
                }
            }
            // Distinct counts of one day do not add up over several, nor are they kept per event.
            Measure::Distinct(column) if per_day && event_measure.is_none() => {
                let kept = lookup(aggregate.distinct, column).ok_or(format!("count(DISTINCT {column})"))?;
                reading.read(format!("{kept} for count(DISTINCT {column}) per day"));
            }
            Measure::Distinct(column) => return Err(format!("count(DISTINCT {column}) over several days")),
            Measure::RowsOfEvent(text) | Measure::Other(text) => return Err(text.clone()),
        }
    }
    Ok(reading)
}
