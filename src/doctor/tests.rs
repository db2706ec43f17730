//! The analysis on stored plans (EXPLAIN ANALYZE, BUFFERS, VERBOSE, FORMAT
//! JSON output of PostgreSQL 15 on the tables named in each test) with
//! catalogs written by hand.

use super::catalog::{Catalog, Index, Table};
use super::detect::analyze;
use super::finding::{Finding, Kind};
use super::plan::Node;

pub(super) fn plan(name: &str) -> serde_json::Value {
    let path = format!("{}/src/doctor/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json[0]["Plan"].clone()
}

fn table(name: &str, rows: f64) -> Table {
    Table { schema: "marketing".into(), name: name.into(), rows, ..Table::default() }
}

fn primary_key(table: &str) -> Index {
    Index {
        name: format!("marketing.{table}_pkey"),
        method: "btree".into(),
        columns: vec!["id".into()],
        valid: true,
        unique: true,
        ..Index::default()
    }
}

/// marketing.clicks (50,000 rows) and marketing.corr (100,000), primary keys only.
fn small_catalog() -> Catalog {
    let mut catalog = Catalog::default();
    for (name, rows) in [("clicks", 50_000.0), ("corr", 100_000.0)] {
        let mut t = table(name, rows);
        t.indexes.push(primary_key(name));
        catalog.tables.insert(format!("marketing.{name}"), t);
    }
    catalog
}

/// marketing.events partitioned by month on occurred_at, as tally creates it.
pub(super) fn events_catalog(leaves: &[&str], aggregates: &[&str]) -> Catalog {
    let mut catalog = Catalog::default();
    let mut root = table("events", 0.0);
    root.partition_key = vec!["occurred_at".into()];
    root.leaves = leaves.iter().map(|l| format!("marketing.{l}")).collect();
    for leaf in leaves {
        let mut t = table(leaf, 2_000.0);
        t.root = Some("marketing.events".into());
        root.rows += t.rows;
        catalog.tables.insert(format!("marketing.{leaf}"), t);
    }
    catalog.tables.insert("marketing.events".into(), root);
    catalog.aggregates = aggregates.iter().map(|a| a.to_string()).collect();
    catalog
}

pub(super) fn findings(name: &str, catalog: &Catalog) -> Vec<Finding> {
    let json = plan(name);
    analyze(&Node::new(&json), catalog)
}

fn only(found: &[Finding], kind: Kind) -> &Finding {
    let of_kind: Vec<&Finding> = found.iter().filter(|f| f.kind == kind).collect();
    assert_eq!(of_kind.len(), 1, "one {kind:?} finding in {found:#?}");
    of_kind[0]
}

pub(super) const EVENT_PARTITIONS: [&str; 8] = [
    "events_p2026_08",
    "events_p2026_09",
    "events_p2026_10",
    "events_p2026_11",
    "events_p2026_12",
    "events_p2027_01",
    "events_p2027_02",
    "events_default",
];

#[test]
fn a_selective_seq_scan_under_order_by_gets_a_composite_index() {
    let found = findings("seq_scan", &small_catalog());
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, Kind::SeqScan);
    assert_eq!(f.relation.as_deref(), Some("marketing.clicks"));
    assert_eq!((f.estimated_rows, f.actual_rows, f.loops), (Some(31.0), Some(30.0), Some(1.0)));
    assert_eq!(f.buffers.as_ref().map(|b| b.shared_hit), Some(667));
    assert!(
        f.problem.starts_with("Seq Scan reads 50,000 rows of marketing.clicks to return 30 (0.06%)"),
        "{}",
        f.problem
    );
    // Equality column first, then the range / ORDER BY column.
    assert_eq!(
        f.sql,
        [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_country_clicked_at_idx ON marketing.clicks (country, clicked_at);"
        ]
    );
}

#[test]
fn containment_on_jsonb_gets_gin_jsonb_path_ops() {
    let f = only(&findings("gin", &small_catalog()), Kind::SeqScan).clone();
    assert_eq!(
        f.sql,
        [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_payload_gin_idx ON marketing.clicks USING gin (payload jsonb_path_ops);"
        ]
    );
}

#[test]
fn a_constant_inequality_gets_a_partial_index() {
    let f = only(&findings("partial", &small_catalog()), Kind::SeqScan).clone();
    assert_eq!(
        f.sql,
        [
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_status_28f681_partial_idx ON marketing.clicks (status) WHERE status <> \
          'done'::text;"
        ]
    );
}

#[test]
fn an_index_that_exists_but_was_not_chosen_gets_analyze_and_an_invalid_one_reindex() {
    let mut catalog = small_catalog();
    let clicks = catalog.tables.get_mut("marketing.clicks").unwrap();
    clicks.indexes.push(Index {
        name: "marketing.clicks_by_country".into(),
        method: "btree".into(),
        columns: vec!["country".into(), "clicked_at".into(), "id".into()],
        valid: true,
        ..Index::default()
    });
    let f = only(&findings("seq_scan", &catalog), Kind::SeqScan).clone();
    assert!(f.fix.contains("marketing.clicks_by_country already serves this"), "{}", f.fix);
    assert_eq!(f.sql, ["ANALYZE marketing.clicks;"]);
    catalog.tables.get_mut("marketing.clicks").unwrap().indexes[1].valid = false;
    let f = only(&findings("seq_scan", &catalog), Kind::SeqScan).clone();
    assert_eq!(f.sql, ["REINDEX INDEX CONCURRENTLY marketing.clicks_by_country;"]);
}

#[test]
fn correlated_columns_get_extended_statistics() {
    let found = findings("misestimate", &small_catalog());
    let f = only(&found, Kind::Misestimate);
    assert_eq!((f.estimated_rows, f.actual_rows), (Some(9.0), Some(1000.0)));
    assert!(f.problem.contains("estimated 9 rows, got 1,000 (111x more)"), "{}", f.problem);
    assert_eq!(
        f.sql,
        [
            "CREATE STATISTICS IF NOT EXISTS marketing.corr_a_b_stats (dependencies, ndistinct, mcv) ON a, b FROM \
             marketing.corr;",
            "ANALYZE marketing.corr;"
        ]
    );
}

#[test]
fn a_sort_spilling_to_disk_gets_work_mem_for_three_times_the_spill() {
    let found = findings("spill", &small_catalog());
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = only(&found, Kind::Spill);
    assert!(f.problem.contains("spilled 5,840 kB to disk (external merge)"), "{}", f.problem);
    assert_eq!(f.buffers.as_ref().map(|b| b.temp_written), Some(2368));
    // 3 × 5,840 kB ≈ 17 MB, rounded up to a power of two.
    assert_eq!(f.sql, ["SET work_mem = '32MB';"]);
}

#[test]
fn a_nested_loop_rescanning_a_table_gets_an_index_on_the_join_column() {
    let found = findings("nested_loop", &small_catalog());
    let f = only(&found, Kind::NestedLoop);
    assert_eq!(f.relation.as_deref(), Some("marketing.clicks"));
    assert!(
        f.problem.starts_with("Nested Loop compares 10,000,000 row pairs: 200 outer rows, each against 50,000 rows of marketing.clicks (a Seq Scan per outer row)"),
        "{}",
        f.problem
    );
    assert_eq!(f.sql, ["CREATE INDEX CONCURRENTLY IF NOT EXISTS clicks_channel_idx ON marketing.clicks (channel);"]);
    // The inner Seq Scan repeated by the loop is the loop's finding, not a second one.
    assert!(found.iter().all(|f| f.kind != Kind::SeqScan), "{found:#?}");
}

#[test]
fn a_cast_partition_key_prunes_nothing_and_the_rewrite_is_suggested() {
    let found = findings("not_pruned", &events_catalog(&EVENT_PARTITIONS, &[]));
    let f = only(&found, Kind::PartitionsNotPruned);
    assert_eq!(f.relation.as_deref(), Some("marketing.events"));
    assert!(f.problem.contains("scans all 8 partitions of marketing.events"), "{}", f.problem);
    assert!(f.fix.ends_with("occurred_at >= '2026-11-20' AND occurred_at < '2026-11-21'"), "{}", f.fix);
    // The scans of the 8 partitions are one finding about the partitioned table.
    let scan = only(&found, Kind::SeqScan);
    assert_eq!(scan.node, "Seq Scan on 8 partitions of marketing.events");
    assert_eq!(scan.actual_rows, Some(288.0));
}

#[test]
fn counting_raw_events_by_source_points_at_the_campaign_aggregate() {
    let both = events_catalog(&EVENT_PARTITIONS, &["daily_campaign_metrics", "daily_event_counts"]);
    let found = findings("aggregate", &both);
    let f = only(&found, Kind::UseAggregate);
    assert!(f.fix.starts_with("read reporting.daily_campaign_metrics instead"), "{}", f.fix);
    assert!(f.problem.contains("by utm_source"), "{}", f.problem);
    // Without the aggregate in the database there is nothing to point at.
    let none = events_catalog(&EVENT_PARTITIONS, &[]);
    assert!(findings("aggregate", &none).iter().all(|f| f.kind != Kind::UseAggregate));
}

#[test]
fn a_plan_without_actual_rows_is_judged_on_estimates() {
    let mut json = plan("seq_scan");
    strip_actuals(&mut json);
    let found = analyze(&Node::new(&json), &small_catalog());
    let f = only(&found, Kind::SeqScan);
    assert_eq!(f.actual_rows, None);
    assert!(f.problem.starts_with("Seq Scan reads 50,000 rows of marketing.clicks to return 31"), "{}", f.problem);
    assert!(found.iter().all(|f| f.kind != Kind::Misestimate));
}

fn strip_actuals(node: &mut serde_json::Value) {
    if let Some(map) = node.as_object_mut() {
        map.retain(|k, _| !k.starts_with("Actual") && !k.starts_with("Rows Removed") && !k.contains("Blocks"));
        if let Some(children) = map.get_mut("Plans").and_then(|p| p.as_array_mut()) {
            children.iter_mut().for_each(strip_actuals);
        }
    }
}

#[test]
fn small_tables_and_unselective_scans_are_left_alone() {
    let mut catalog = small_catalog();
    catalog.tables.get_mut("marketing.clicks").unwrap().rows = 5_000.0;
    // The plan read 50,000 rows: the plan's own counts win over a stale catalog.
    assert_eq!(findings("partial", &catalog).len(), 1);
    let json = serde_json::json!({
        "Node Type": "Seq Scan", "Relation Name": "clicks", "Schema": "marketing", "Alias": "clicks",
        "Plan Rows": 40000, "Actual Rows": 40000, "Actual Loops": 1, "Rows Removed by Filter": 10000,
        "Filter": "(clicks.status <> 'done'::text)"
    });
    assert_eq!(analyze(&Node::new(&json), &small_catalog()), []);
}
