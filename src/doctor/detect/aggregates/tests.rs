//! `use_aggregate` on stored plans of real statements (EXPLAIN ANALYZE,
//! BUFFERS, VERBOSE of PostgreSQL 15 on a `tally demo` database, session
//! TimeZone Etc/UTC).

use chrono_tz::Tz;

use super::{ANSWERS, DayZones, answer, shape};
use crate::doctor::finding::{Finding, Kind};
use crate::doctor::plan::Node;
use crate::doctor::tests::{EVENT_PARTITIONS, events_catalog, findings, plan};

const BOTH: [&str; 2] = ["daily_campaign_metrics", "daily_event_counts"];

fn use_aggregate(found: &[Finding]) -> Option<&Finding> {
    let suggested: Vec<&Finding> = found.iter().filter(|f| f.kind == Kind::UseAggregate).collect();
    assert!(suggested.len() <= 1, "{suggested:#?}");
    suggested.first().copied()
}

#[test]
fn filters_on_user_id_or_properties_are_answered_by_no_aggregate() {
    let catalog = events_catalog(&EVENT_PARTITIONS, &BOTH);
    // SELECT count(*) FROM marketing.events WHERE user_id = 'visitor-174'
    assert_eq!(use_aggregate(&findings("aggregate_user_id", &catalog)), None);
    // SELECT event, count(*) FROM marketing.events WHERE properties @> '{"url": "/pricing"}' GROUP BY event
    assert_eq!(use_aggregate(&findings("aggregate_properties", &catalog)), None);
}

#[test]
fn distinct_users_over_several_days_are_not_a_sum_of_daily_visitors() {
    // SELECT count(DISTINCT user_id) FROM marketing.events WHERE occurred_at >= '2026-11-01' AND occurred_at < '2026-11-08'
    let catalog = events_catalog(&EVENT_PARTITIONS, &BOTH);
    assert_eq!(use_aggregate(&findings("aggregate_distinct_users", &catalog)), None);
}

#[test]
fn a_per_day_count_by_event_reads_daily_event_counts() {
    // SELECT occurred_at::date AS day, event, count(*), count(DISTINCT user_id) FROM marketing.events
    // WHERE occurred_at >= '2026-11-01' AND occurred_at < '2026-11-08' GROUP BY 1, 2
    let mut catalog = events_catalog(&EVENT_PARTITIONS, &BOTH);
    let found = findings("aggregate_event_per_day", &catalog);
    let f = use_aggregate(&found).unwrap_or_else(|| panic!("use_aggregate in {found:#?}"));
    assert!(f.fix.starts_with("read reporting.daily_event_counts instead"), "{}", f.fix);
    for part in
        ["its day column for occurred_at", "sum(events) for count(*)", "visitors for count(DISTINCT user_id) per day"]
    {
        assert!(f.fix.contains(part), "`{part}` in {}", f.fix);
    }
    assert!(!f.fix.contains("approximately"), "UTC days are the aggregates' days: {}", f.fix);
    assert!(f.problem.contains("by (occurred_at)::date, event"), "{}", f.problem);
    // Reported in New York, the aggregate's days are not the query's UTC days.
    catalog.days = DayZones { reporting: Tz::America__New_York, ..DayZones::default() };
    let found = findings("aggregate_event_per_day", &catalog);
    let f = use_aggregate(&found).unwrap_or_else(|| panic!("use_aggregate in {found:#?}"));
    assert!(f.fix.contains("it answers only approximately"), "{}", f.fix);
    assert!(f.fix.contains("reporting_timezone America/New_York"), "{}", f.fix);
}

#[test]
fn a_per_day_campaign_breakdown_reads_daily_campaign_metrics() {
    // SELECT date_trunc('day', occurred_at), utm_source, utm_campaign, count(*) FILTER (WHERE event = 'signup'),
    // count(DISTINCT session_id) FROM marketing.events WHERE occurred_at >= '2026-11-01'
    // AND occurred_at < '2026-11-15' AND utm_source = 'google' GROUP BY 1, 2, 3
    let found = findings("aggregate_campaign_per_day", &events_catalog(&EVENT_PARTITIONS, &BOTH));
    let f = use_aggregate(&found).unwrap_or_else(|| panic!("use_aggregate in {found:#?}"));
    assert!(f.fix.starts_with("read reporting.daily_campaign_metrics instead"), "{}", f.fix);
    for part in [
        "its utm_source column",
        "its utm_campaign column",
        "sum(signups) for count(*) FILTER (WHERE event = 'signup')",
        "sessions for count(DISTINCT session_id) per day",
        "there, missing and empty UTM values are '(none)'",
    ] {
        assert!(f.fix.contains(part), "`{part}` in {}", f.fix);
    }
    // daily_event_counts has no campaign: without the campaign aggregate, nothing to point at.
    let events_only = events_catalog(&EVENT_PARTITIONS, &["daily_event_counts"]);
    assert_eq!(use_aggregate(&findings("aggregate_campaign_per_day", &events_only)), None);
}

#[test]
fn a_rolling_window_is_answered_in_whole_days_and_says_so() {
    // SELECT event, count(*) FROM marketing.events WHERE occurred_at >= now() - interval '7 days' GROUP BY event
    let found = findings("aggregate_last_7_days", &events_catalog(&EVENT_PARTITIONS, &BOTH));
    let f = use_aggregate(&found).unwrap_or_else(|| panic!("use_aggregate in {found:#?}"));
    assert!(f.fix.starts_with("read reporting.daily_event_counts instead"), "{}", f.fix);
    assert!(f.fix.contains("(now() - '7 days'::interval) is not a day boundary"), "{}", f.fix);
}

#[test]
fn what_the_doctor_says_each_aggregate_holds_is_what_it_holds() {
    let definitions = [
        ("daily_event_counts", include_str!("../../../../sql/aggregates/daily_event_counts.sql")),
        ("daily_campaign_metrics", include_str!("../../../../sql/aggregates/daily_campaign_metrics.sql")),
    ];
    for answers in ANSWERS {
        let registered = crate::aggregates::find(answers.name).map(|a| a.key.to_vec());
        let mut keys = vec!["day"];
        keys.extend(answers.keys);
        assert_eq!(registered, Some(keys), "{}", answers.name);
        let (_, sql) = definitions.iter().find(|(name, _)| *name == answers.name).unwrap();
        for (_, measure) in answers.event_measures.iter().chain(answers.distinct) {
            assert!(sql.contains(&format!("AS {measure}")), "{} has no {measure}", answers.name);
        }
        for (column, measure) in answers.distinct {
            // Compared byte by byte: the same distinct values as the database's collation.
            assert!(sql.contains(&format!("count(DISTINCT e.{column} COLLATE \"C\")")), "{}.{measure}", answers.name);
        }
    }
}

#[test]
fn the_part_of_the_query_an_aggregate_cannot_answer_is_named() {
    let catalog = events_catalog(&EVENT_PARTITIONS, &BOTH);
    for (fixture, reason) in [
        ("aggregate_user_id", "the filter on user_id"),
        ("aggregate_properties", "the filter properties @> '{\"url\": \"/pricing\"}'::jsonb"),
        ("aggregate_distinct_users", "count(DISTINCT user_id) over several days"),
    ] {
        let json = plan(fixture);
        let (_, query) = shape::read(&Node::new(&json), &catalog, &catalog.days).expect("a grouping of events");
        for answers in ANSWERS {
            assert_eq!(answer(answers, &query, &catalog.days).err().as_deref(), Some(reason), "{fixture}");
        }
    }
}
