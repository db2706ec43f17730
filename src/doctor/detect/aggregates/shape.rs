//! What a query asks of `marketing.events`, read from its VERBOSE plan: the
//! conditions of the scans, the GROUP BY of the Aggregate above them, and
//! the aggregate calls it computes. Only a single-table query with one level
//! of grouping is read; anything else (a join, a grouping of a grouping,
//! GROUPING SETS) gets no shape, so nothing is suggested from a guess.

use super::days::{DayZones, Fit, Grain, Zone, day_expression};
use super::text::{calls_aggregate, columns, is_identifier, text_literal, unqualified};
use crate::doctor::catalog::Catalog;
use crate::doctor::plan::Node;
use crate::doctor::predicate::{self, Term, split_and, split_operator, strip_parens};

/// The raw table the aggregates are built from.
pub const EVENTS: &str = "marketing.events";

/// One top-level AND term of the scans' conditions.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `col = value`, `col = ANY (...)`, `col <> value`, `col IS [NOT] NULL`
    /// on one plain column; `equals` is the value of a `col = 'value'`.
    Column { column: String, equals: Option<String> },
    /// A range of days of `occurred_at`.
    Days(Fit),
    /// Anything else, as written.
    Other(String),
}

/// One GROUP BY expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Group {
    Column(String),
    Days {
        grain: Grain,
        zone: Zone,
    },
    /// Any other expression (`utm_source || '/' || utm_campaign`), and the
    /// columns it reads: answerable when they are all key columns.
    Expression {
        text: String,
        columns: Vec<String>,
    },
}

/// One aggregate call.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// `count(*)`.
    Rows,
    /// `count(*) FILTER (WHERE event = 'value')`.
    RowsOfEvent(String),
    /// `count(DISTINCT column)`.
    Distinct(String),
    /// Anything else (`sum(...)`, a HAVING), as written.
    Other(String),
}

/// The query as the aggregates would have to answer it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    pub filters: Vec<Filter>,
    pub groups: Vec<Group>,
    /// The GROUP BY expressions as written (without qualifiers), for people.
    pub group_text: Vec<String>,
    pub measures: Vec<Measure>,
}

/// The Aggregate node over `marketing.events` and the query's shape, when
/// the plan is a grouping of events alone.
pub fn read<'a>(plan: &Node<'a>, catalog: &Catalog, zones: &DayZones) -> Option<(Node<'a>, Shape)> {
    let reads_events = |n: &Node| {
        n.relation().is_some_and(|r| r == EVENTS || catalog.table(&r).and_then(|t| t.root.as_deref()) == Some(EVENTS))
    };
    let nodes = plan.descendants();
    let scans: Vec<&Node> = nodes.iter().filter(|n| reads_events(n)).collect();
    // A join or a subquery on another table: no aggregate holds its columns.
    if scans.is_empty() || nodes.iter().any(|n| n.relation().is_some() && !reads_events(n)) {
        return None;
    }
    let aggregate = *nodes.iter().find(|n| n.node_type() == "Aggregate" && n.descendants().iter().any(reads_events))?;
    let below = aggregate.descendants();
    let nested_grouping = below.iter().skip(1).any(|n| {
        matches!(n.node_type(), "Aggregate" | "Group" | "Unique" | "WindowAgg" | "SetOp")
            && !(n.node_type() == "Aggregate" && n.partial_mode() == Some("Partial"))
    });
    if aggregate.has_grouping_sets()
        || nested_grouping
        || below.iter().filter(|n| reads_events(n)).count() != scans.len()
    {
        return None;
    }
    let mut shape = Shape::default();
    for scan in scans {
        let alias = scan.alias()?;
        for condition in [scan.filter(), scan.index_cond()].into_iter().flatten() {
            for term in split_and(strip_parens(condition)) {
                let filter = filter(term, alias, zones);
                if !shape.filters.contains(&filter) {
                    shape.filters.push(filter);
                }
            }
        }
    }
    let keys = aggregate.group_keys();
    let mut grouped: Vec<String> = Vec::new();
    for key in &keys {
        let text = unqualified(key);
        grouped.extend(columns(key));
        shape.groups.push(match day_expression(&text) {
            Some((grain, zone)) => Group::Days { grain, zone },
            None if is_identifier(strip_parens(&text)) => Group::Column(strip_parens(&text).to_string()),
            None => Group::Expression { text: text.clone(), columns: columns(key) },
        });
        shape.group_text.push(strip_parens(&text).to_string());
    }
    for output in aggregate.output().into_iter().filter(|o| !keys.contains(o)) {
        // An expression of the grouped columns (`utm_source || '/' || utm_campaign`) computes nothing new.
        if !calls_aggregate(output) && columns(output).iter().all(|c| grouped.contains(c)) {
            continue;
        }
        if let Some(measure) = measure(&unqualified(output)) {
            shape.measures.push(measure);
        }
    }
    if let Some(having) = aggregate.filter() {
        shape.measures.push(Measure::Other(format!("HAVING {}", unqualified(having))));
    }
    Some((aggregate, shape))
}

fn filter(term: &str, alias: &str, zones: &DayZones) -> Filter {
    let text = unqualified(term);
    let columns = columns(term);
    if columns == ["occurred_at"] {
        return zones.condition(&text).map_or(Filter::Other(text), Filter::Days);
    }
    match predicate::terms(term, alias).as_slice() {
        [Term::Equality { column }] | [Term::Constant { column, .. }] if columns.len() == 1 => {
            let equals = split_operator(strip_parens(&text))
                .filter(|(_, op, _)| *op == "=")
                .and_then(|(_, _, value)| text_literal(value));
            Filter::Column { column: column.clone(), equals }
        }
        _ => Filter::Other(text),
    }
}

/// The aggregate call an output computes; `None` for a constant.
fn measure(output: &str) -> Option<Measure> {
    let text = strip_parens(output);
    if text == "count(*)" {
        return Some(Measure::Rows);
    }
    if let Some(condition) = text.strip_prefix("count(*) FILTER (WHERE ").and_then(|t| t.strip_suffix(')')) {
        let value = split_operator(strip_parens(condition))
            .filter(|(column, op, _)| *column == "event" && *op == "=")
            .and_then(|(_, _, value)| text_literal(value));
        return Some(value.map_or_else(|| Measure::Other(text.to_string()), Measure::RowsOfEvent));
    }
    if let Some(column) = text.strip_prefix("count(DISTINCT ").and_then(|t| t.strip_suffix(')'))
        && is_identifier(column)
    {
        return Some(Measure::Distinct(column.to_string()));
    }
    let constant = text.starts_with('\'') || text.starts_with(|c: char| c.is_ascii_digit());
    (!constant).then(|| Measure::Other(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_filters_are_recognised_or_kept_as_other() {
        assert_eq!(measure("count(*)"), Some(Measure::Rows));
        assert_eq!(
            measure("count(*) FILTER (WHERE (event = 'signup'::text))"),
            Some(Measure::RowsOfEvent("signup".into()))
        );
        assert_eq!(measure("count(DISTINCT user_id)"), Some(Measure::Distinct("user_id".into())));
        assert_eq!(
            measure("sum(((properties ->> 'revenue'::text))::numeric)").map(|m| matches!(m, Measure::Other(_))),
            Some(true)
        );
        assert_eq!(measure("'x'::text"), None);
        let zones = DayZones::default();
        assert_eq!(
            filter("(e.event = 'page_view'::text)", "e", &zones),
            Filter::Column { column: "event".into(), equals: Some("page_view".into()) }
        );
        assert_eq!(
            filter("(e.utm_source = ANY ('{google,bing}'::text[]))", "e", &zones),
            Filter::Column { column: "utm_source".into(), equals: None }
        );
        assert!(matches!(filter("(e.properties @> '{\"a\": 1}'::jsonb)", "e", &zones), Filter::Other(_)));
        assert!(matches!(filter("((e.user_id = 'u1'::text) OR (e.event = 'x'::text))", "e", &zones), Filter::Other(_)));
    }
}
