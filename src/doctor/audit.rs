//! The index audit (`tally doctor`, `tally explain --audit`): indexes that
//! cost every write but serve no read. Unused ones (no scan since the
//! statistics were reset), duplicates (same table, method, keys, operator
//! classes, predicate), prefix-redundant B-trees (their keys lead another
//! B-tree with the same predicate), and invalid ones left by a failed or
//! interrupted concurrent build. Rules are pure and unit-tested; [`load`]
//! reads the catalogs.

use serde::Serialize;
use sqlx::PgPool;

use super::findings::{Finding, Kind};
use crate::error::Error;

/// One index as the audit sees it. Partition indexes attached to a
/// partitioned index are judged through their parent (their scans and sizes
/// are summed into it).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct AuditIndex {
    /// `schema.name`, quoted where needed.
    pub index: String,
    /// `schema.name` of the table, quoted where needed.
    pub table: String,
    pub method: String,
    /// Key columns or expressions.
    pub columns: Vec<String>,
    /// Key columns with operator class, collation and ordering: equal
    /// signatures index the same way.
    pub signature: Vec<String>,
    /// INCLUDE columns.
    pub include: Vec<String>,
    pub predicate: Option<String>,
    pub valid: bool,
    pub unique: bool,
    /// A constraint that needs it: PRIMARY KEY, UNIQUE, EXCLUDE, a foreign key
    /// of another table referencing it, or the table's REPLICA IDENTITY.
    pub constraint: Option<String>,
    /// An index of a partitioned table (`ON` the parent).
    pub partitioned: bool,
    /// A CREATE INDEX or REINDEX is building it right now.
    pub in_progress: bool,
    /// Index scans since the statistics were reset (all partitions).
    pub scans: i64,
    pub size_bytes: i64,
    /// Sequential and index scans of the table (all partitions).
    pub table_reads: i64,
    /// `USING ...` part of its definition (`btree (a, b) WHERE ...`).
    pub using: String,
    /// Leaf partitions without an attached index (an invalid partitioned index).
    pub missing_partitions: Vec<String>,
}

/// What `tally doctor` found: the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub schemas: Vec<String>,
    pub indexes_checked: usize,
    /// When the usage statistics were last reset (`pg_stat_database.stats_reset`).
    pub stats_since: Option<String>,
    pub findings: Vec<Finding>,
}

/// Audits every index in the schemas other than PostgreSQL's own.
pub async fn run(pool: &PgPool) -> Result<AuditReport, Error> {
    let (indexes, schemas) = load(pool).await.map_err(|e| Error::database("reading the indexes", &e))?;
    let stats_since: Option<String> = sqlx::query_scalar(
        "SELECT to_char(stats_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"')
         FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| Error::database("reading pg_stat_database", &e))?;
    Ok(AuditReport { schemas, indexes_checked: indexes.len(), stats_since, findings: audit(&indexes) })
}

/// The indexes of user schemas, and those schemas.
pub async fn load(pool: &PgPool) -> Result<(Vec<AuditIndex>, Vec<String>), sqlx::Error> {
    let indexes: Vec<AuditIndex> = sqlx::query_as(
        r#"WITH idx AS (
             SELECT i.*, ic.relname AS index_name, ic.relkind AS index_kind, n.nspname AS schema,
                    t.relname AS table_name, am.amname
             FROM pg_index i
             JOIN pg_class ic ON ic.oid = i.indexrelid
             JOIN pg_class t ON t.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = ic.relnamespace
             JOIN pg_am am ON am.oid = ic.relam
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
               AND NOT ic.relispartition)
         SELECT format('%I.%I', schema, index_name) AS index, format('%I.%I', schema, table_name) AS "table",
                amname::text AS method,
                array(SELECT pg_get_indexdef(indexrelid, k, true) FROM generate_series(1, indnkeyatts) k ORDER BY k) AS columns,
                array(SELECT pg_get_indexdef(indexrelid, k, true) || ' ' || indclass[k - 1]::text || ' '
                             || indoption[k - 1]::text || ' ' || indcollation[k - 1]::text
                      FROM generate_series(1, indnkeyatts) k ORDER BY k) AS signature,
                array(SELECT pg_get_indexdef(indexrelid, k, true)
                      FROM generate_series(indnkeyatts + 1, indnatts) k ORDER BY k) AS include,
                pg_get_expr(indpred, indrelid, true) AS predicate, indisvalid AS valid, indisunique AS "unique",
                coalesce((SELECT conname::text FROM pg_constraint WHERE conindid = indexrelid
                          ORDER BY contype <> 'p', contype <> 'u' LIMIT 1),
                         CASE WHEN indisreplident THEN 'REPLICA IDENTITY' END) AS "constraint",
                index_kind = 'I' AS partitioned,
                EXISTS (SELECT 1 FROM pg_stat_progress_create_index p
                        WHERE p.index_relid = indexrelid OR (p.relid = indrelid AND NOT indisvalid)) AS in_progress,
                coalesce((SELECT sum(s.idx_scan) FROM (SELECT indexrelid AS relid UNION SELECT relid FROM pg_partition_tree(indexrelid)) pt
                          JOIN pg_stat_all_indexes s ON s.indexrelid = pt.relid), 0)::int8 AS scans,
                coalesce((SELECT sum(pg_relation_size(pt.relid))
                          FROM (SELECT indexrelid AS relid UNION SELECT relid FROM pg_partition_tree(indexrelid)) pt), 0)::int8 AS size_bytes,
                coalesce((SELECT sum(coalesce(s.seq_scan, 0) + coalesce(s.idx_scan, 0))
                          FROM (SELECT indrelid AS relid UNION SELECT relid FROM pg_partition_tree(indrelid)) pt
                          JOIN pg_stat_all_tables s ON s.relid = pt.relid), 0)::int8 AS table_reads,
                substring(pg_get_indexdef(indexrelid) from ' USING (.*)$') AS "using",
                CASE WHEN index_kind = 'I' AND NOT indisvalid THEN
                    array(SELECT format('%I.%I', pn.nspname, pc.relname)
                          FROM pg_partition_tree(indrelid) pt
                          JOIN pg_class pc ON pc.oid = pt.relid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                          WHERE pt.isleaf AND NOT EXISTS (
                              SELECT 1 FROM pg_partition_tree(indexrelid) it
                              JOIN pg_index li ON li.indexrelid = it.relid WHERE li.indrelid = pt.relid)
                          ORDER BY 1)
                ELSE ARRAY[]::text[] END AS missing_partitions
         FROM idx ORDER BY 2, 1"#,
    )
    .fetch_all(pool)
    .await?;
    let mut schemas: Vec<String> =
        indexes.iter().filter_map(|i| i.table.split_once('.').map(|(s, _)| s.to_string())).collect();
    schemas.sort();
    schemas.dedup();
    Ok((indexes, schemas))
}

/// Every finding about `indexes`: invalid, duplicate, redundant, then unused
/// (an index is reported once, for its most serious problem).
pub fn audit(indexes: &[AuditIndex]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut reported: Vec<&str> = Vec::new();
    for index in indexes.iter().filter(|i| !i.valid && !i.in_progress) {
        findings.push(invalid(index));
        reported.push(&index.index);
    }
    let usable: Vec<&AuditIndex> = indexes.iter().filter(|i| i.valid).collect();
    for index in &usable {
        if index.constraint.is_some() || reported.contains(&index.index.as_str()) {
            continue;
        }
        let same = |other: &&&AuditIndex| {
            other.index != index.index
                && other.table == index.table
                && other.method == index.method
                && other.predicate == index.predicate
        };
        // A duplicate: the other index is kept (constraint, unique, more used, or first by name).
        if let Some(keeper) = usable.iter().filter(same).find(|other| {
            other.signature == index.signature && other.include == index.include && keeps_over(other, index)
        }) {
            findings.push(duplicate(index, keeper));
            reported.push(&index.index);
            continue;
        }
        // Prefix-redundant: a non-unique B-tree whose keys lead a longer B-tree.
        if index.method == "btree" && !index.unique && index.include.is_empty() {
            let longer = usable.iter().filter(same).find(|other| {
                other.signature.len() > index.signature.len() && other.signature.starts_with(&index.signature)
            });
            if let Some(longer) = longer {
                findings.push(redundant(index, longer));
                reported.push(&index.index);
                continue;
            }
        }
    }
    for index in &usable {
        if index.constraint.is_none()
            && !index.unique
            && index.scans == 0
            && index.table_reads > 0
            && !reported.contains(&index.index.as_str())
        {
            findings.push(unused(index));
        }
    }
    findings
}

/// Whether `keeper` is the one to keep of two equal indexes.
fn keeps_over(keeper: &AuditIndex, other: &AuditIndex) -> bool {
    let rank = |i: &AuditIndex| (i.constraint.is_some(), i.unique, i.scans);
    match rank(keeper).cmp(&rank(other)) {
        std::cmp::Ordering::Equal => keeper.index < other.index,
        order => order.is_gt(),
    }
}

fn finding(kind: Kind, index: &AuditIndex, problem: String, fix: String, sql: Vec<String>) -> Finding {
    Finding {
        kind,
        node: None,
        relation: Some(index.table.clone()),
        index: Some(index.index.clone()),
        estimated_rows: None,
        actual_rows: None,
        loops: None,
        time_ms: None,
        buffers: None,
        problem,
        fix,
        sql,
    }
}

/// `DROP INDEX CONCURRENTLY`, or for an index of a partitioned table (which
/// PostgreSQL cannot drop concurrently) a plain DROP under a short lock_timeout.
fn drop_statements(index: &AuditIndex) -> (String, Vec<String>) {
    if index.partitioned {
        (
            " (an index of a partitioned table cannot be dropped CONCURRENTLY: the DROP takes a brief ACCESS \
             EXCLUSIVE lock on the table, so it runs under a short lock_timeout; retry if it times out)"
                .to_string(),
            vec!["SET lock_timeout = '2s';".to_string(), format!("DROP INDEX IF EXISTS {};", index.index)],
        )
    } else {
        (String::new(), vec![format!("DROP INDEX CONCURRENTLY IF EXISTS {};", index.index)])
    }
}

fn described(index: &AuditIndex) -> String {
    format!(
        "{} ({}{})",
        index.method,
        index.columns.join(", "),
        index.predicate.as_ref().map_or(String::new(), |p| format!(") WHERE ({p}"))
    )
}

fn invalid(index: &AuditIndex) -> Finding {
    if index.partitioned {
        let missing = &index.missing_partitions;
        let problem = format!(
            "{} on {} is INVALID: {} partition{} no attached index ({}); queries cannot rely on it",
            index.index,
            index.table,
            missing.len(),
            if missing.len() == 1 { " has" } else { "s have" },
            missing.join(", ")
        );
        let unique = if index.unique { "UNIQUE " } else { "" };
        let mut sql = Vec::new();
        for leaf in missing {
            // The leaf's index goes in the leaf's schema.
            let (leaf_schema, leaf_name) = leaf.split_once('.').unwrap_or(("", leaf.as_str()));
            let index_name = index.index.split_once('.').map_or(index.index.as_str(), |(_, n)| n).trim_matches('"');
            let leaf_index = super::predicate::quote(super::index::truncate(
                &format!("{}_{index_name}", leaf_name.trim_matches('"')),
                63,
            ));
            sql.push(format!(
                "CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {leaf_index} ON {leaf} USING {};",
                index.using
            ));
            sql.push(format!("ALTER INDEX {} ATTACH PARTITION {leaf_schema}.{leaf_index};", index.index));
        }
        let fix = "build the index on each partition concurrently and attach it; the parent becomes valid when \
                   every partition has one"
            .to_string();
        return finding(Kind::InvalidIndex, index, problem, fix, sql);
    }
    let problem = format!(
        "{} on {} is INVALID (a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed or was interrupted): \
         every write still maintains it, no query can use it",
        index.index, index.table
    );
    let fix = format!(
        "rebuild it (if the build failed on the data, e.g. duplicates under a UNIQUE index, fix the data first), \
         or drop it: DROP INDEX CONCURRENTLY IF EXISTS {}",
        index.index
    );
    finding(Kind::InvalidIndex, index, problem, fix, vec![format!("REINDEX INDEX CONCURRENTLY {};", index.index)])
}

fn duplicate(index: &AuditIndex, keeper: &AuditIndex) -> Finding {
    let problem = format!(
        "{} duplicates {}: both are {} on {}{}",
        index.index,
        keeper.index,
        described(index),
        index.table,
        match &keeper.constraint {
            Some(c) => format!(" ({} backs constraint {c})", keeper.index),
            None if keeper.unique => format!(" ({} is UNIQUE)", keeper.index),
            None => String::new(),
        }
    );
    let (caveat, sql) = drop_statements(index);
    let fix = format!("drop {}: {} serves the same queries{caveat}", index.index, keeper.index);
    finding(Kind::DuplicateIndex, index, problem, fix, sql)
}

fn redundant(index: &AuditIndex, longer: &AuditIndex) -> Finding {
    let problem = format!(
        "{} ({}) is a prefix of {} ({}) on {}: the longer index serves the same lookups",
        index.index,
        index.columns.join(", "),
        longer.index,
        longer.columns.join(", "),
        index.table
    );
    let (caveat, sql) = drop_statements(index);
    let fix =
        format!("drop {} (queries that used it use {}, slightly larger, instead){caveat}", index.index, longer.index);
    finding(Kind::RedundantIndex, index, problem, fix, sql)
}

fn unused(index: &AuditIndex) -> Finding {
    let problem = format!(
        "{} on {} ({}, {}) has not been scanned since the statistics were reset, while the table was read {} \
         times; every write maintains it",
        index.index,
        index.table,
        described(index),
        size(index.size_bytes),
        index.table_reads
    );
    let (caveat, sql) = drop_statements(index);
    let fix = format!(
        "drop it if no query needs it: check standbys too (their scans are not counted here) and rare jobs \
         (month-end reports){caveat}"
    );
    finding(Kind::UnusedIndex, index, problem, fix, sql)
}

fn size(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{} kB", b / 1024),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str, columns: &[&str]) -> AuditIndex {
        AuditIndex {
            index: format!("app.{name}"),
            table: "app.leads".into(),
            method: "btree".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            signature: columns.iter().map(|c| format!("{c} 1978 0 100")).collect(),
            valid: true,
            scans: 5,
            table_reads: 10,
            using: format!("btree ({})", columns.join(", ")),
            ..AuditIndex::default()
        }
    }

    fn kinds(findings: &[Finding]) -> Vec<(Kind, String)> {
        findings.iter().map(|f| (f.kind, f.index.clone().unwrap_or_default())).collect()
    }

    #[test]
    fn a_plain_index_beside_a_unique_constraint_is_the_duplicate() {
        let unique = AuditIndex {
            unique: true,
            constraint: Some("leads_email_key".into()),
            ..index("leads_email_key", &["email"])
        };
        let plain = index("leads_email_idx", &["email"]);
        let found = audit(&[plain.clone(), unique]);
        assert_eq!(kinds(&found), [(Kind::DuplicateIndex, "app.leads_email_idx".into())]);
        assert!(found[0].problem.contains("backs constraint leads_email_key"), "{}", found[0].problem);
        assert_eq!(found[0].sql, ["DROP INDEX CONCURRENTLY IF EXISTS app.leads_email_idx;"]);
    }

    #[test]
    fn of_two_equal_indexes_the_more_used_is_kept_and_opclasses_matter() {
        let a = AuditIndex { scans: 100, ..index("a", &["source"]) };
        let b = AuditIndex { scans: 1, ..index("b", &["source"]) };
        assert_eq!(kinds(&audit(&[a.clone(), b.clone()])), [(Kind::DuplicateIndex, "app.b".into())]);
        let pattern = AuditIndex { signature: vec!["source 10050 0 100".into()], ..b };
        assert_eq!(audit(&[a, pattern]), []);
    }

    #[test]
    fn a_btree_prefix_of_another_is_redundant_unless_unique_or_partial_differs() {
        let short = index("by_source", &["source"]);
        let long = index("by_source_day", &["source", "day"]);
        assert_eq!(kinds(&audit(&[short.clone(), long.clone()])), [(Kind::RedundantIndex, "app.by_source".into())]);
        let unique = AuditIndex { unique: true, ..short.clone() };
        assert_eq!(audit(&[unique, long.clone()]), []);
        let partial = AuditIndex { predicate: Some("source IS NOT NULL".into()), ..short.clone() };
        assert_eq!(audit(&[partial, long.clone()]), []);
        let gin = AuditIndex { method: "gin".into(), ..short };
        assert_eq!(audit(&[gin, long]), []);
    }

    #[test]
    fn unused_needs_zero_scans_a_read_table_and_no_constraint() {
        let unused_one = AuditIndex { scans: 0, size_bytes: 3 << 20, ..index("by_campaign", &["campaign"]) };
        let found = audit(std::slice::from_ref(&unused_one));
        assert_eq!(kinds(&found), [(Kind::UnusedIndex, "app.by_campaign".into())]);
        assert!(
            found[0].problem.contains("3.0 MB") && found[0].problem.contains("read 10 times"),
            "{}",
            found[0].problem
        );
        let never_read = AuditIndex { table_reads: 0, ..unused_one.clone() };
        assert_eq!(audit(&[never_read]), []);
        let primary = AuditIndex { unique: true, constraint: Some("pk".into()), ..unused_one.clone() };
        assert_eq!(audit(&[primary]), []);
        let partitioned = AuditIndex { partitioned: true, ..unused_one };
        assert_eq!(audit(&[partitioned])[0].sql, ["SET lock_timeout = '2s';", "DROP INDEX IF EXISTS app.by_campaign;"]);
    }

    #[test]
    fn invalid_indexes_are_rebuilt_or_completed_partition_by_partition() {
        let broken = AuditIndex { valid: false, unique: true, ..index("leads_email_uniq", &["email"]) };
        let found = audit(std::slice::from_ref(&broken));
        assert_eq!(kinds(&found), [(Kind::InvalidIndex, "app.leads_email_uniq".into())]);
        assert_eq!(found[0].sql, ["REINDEX INDEX CONCURRENTLY app.leads_email_uniq;"]);
        let building = AuditIndex { in_progress: true, ..broken };
        assert_eq!(audit(&[building]), []);
        let parent = AuditIndex {
            valid: false,
            partitioned: true,
            missing_partitions: vec!["app.events_p2026_12".into()],
            using: "btree (source)".into(),
            ..index("events_source_idx", &["source"])
        };
        assert_eq!(
            audit(&[parent])[0].sql,
            [
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_p2026_12_events_source_idx ON app.events_p2026_12 \
                 USING btree (source);",
                "ALTER INDEX app.events_source_idx ATTACH PARTITION app.events_p2026_12_events_source_idx;"
            ]
        );
    }

    #[test]
    fn a_unique_partitioned_index_is_completed_as_unique_in_each_leafs_schema() {
        let parent = AuditIndex {
            valid: false,
            unique: true,
            partitioned: true,
            missing_partitions: vec!["archive.events_p2020_01".into()],
            using: "btree (source)".into(),
            ..index("events_source_key", &["source"])
        };
        assert_eq!(
            audit(&[parent])[0].sql,
            [
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_p2020_01_events_source_key ON \
                 archive.events_p2020_01 USING btree (source);",
                "ALTER INDEX app.events_source_key ATTACH PARTITION archive.events_p2020_01_events_source_key;"
            ]
        );
    }

    #[test]
    fn an_index_a_constraint_or_replica_identity_needs_is_never_dropped() {
        for needed in ["orders_customer_fk", "REPLICA IDENTITY"] {
            let a = AuditIndex { scans: 0, constraint: Some(needed.into()), ..index("needed", &["email"]) };
            let b = AuditIndex { scans: 9, ..index("other", &["email"]) };
            let found = audit(&[a, b]);
            assert!(found.iter().all(|f| f.index.as_deref() != Some("app.needed")), "{needed}: {found:#?}");
        }
    }
}
