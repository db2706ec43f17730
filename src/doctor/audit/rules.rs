//! The audit's findings, one builder per kind: what is wrong with an index,
//! and the statement that drops or repairs it (none for tally's own).

use super::AuditIndex;
use super::finding::{AuditFinding, AuditKind};
use super::own::{self, TallyIndex};

/// Whether `keeper` is the one to keep of two equal indexes: the one a
/// constraint needs, else tally's own, else the UNIQUE one, else the more used.
pub(super) fn keeps_over(keeper: &AuditIndex, other: &AuditIndex) -> bool {
    let rank = |i: &AuditIndex| (i.constraint.is_some(), own::find(&i.index).is_some(), i.unique, i.scans);
    match rank(keeper).cmp(&rank(other)) {
        std::cmp::Ordering::Equal => keeper.index < other.index,
        order => order.is_gt(),
    }
}

fn finding(kind: AuditKind, index: &AuditIndex, problem: String, fix: String, sql: Vec<String>) -> AuditFinding {
    AuditFinding { kind, table: index.table.clone(), index: index.index.clone(), problem, fix, sql }
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

pub(super) fn invalid(index: &AuditIndex, tally: Option<&TallyIndex>) -> AuditFinding {
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
            let leaf_index = crate::db::sql::quote_ident_if_needed(crate::doctor::index::truncate(
                &format!("{}_{index_name}", leaf_name.trim_matches('"')),
                63,
            ));
            sql.push(format!(
                "CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {leaf_index} ON {leaf} USING {};",
                index.using
            ));
            sql.push(format!("ALTER INDEX {} ATTACH PARTITION {leaf_schema}.{leaf_index};", index.index));
        }
        let fix = format!(
            "build the index on each partition concurrently and attach it; the parent becomes valid when every \
             partition has one{}",
            tally.map_or(String::new(), |t| format!(" ({})", owned_by(t)))
        );
        return finding(AuditKind::InvalidIndex, index, problem, fix, sql);
    }
    let problem = format!(
        "{} on {} is INVALID (a CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY failed or was interrupted): \
         every write still maintains it, no query can use it",
        index.index, index.table
    );
    let reindex = format!("REINDEX INDEX CONCURRENTLY {};", index.index);
    let (fix, sql) = match tally {
        Some(t) if t.repaired_by_migrate => (
            format!(
                "run `tally migrate` (the worker does at start-up): it drops tally's interrupted concurrent builds \
                 and builds them again, concurrently; or rebuild it yourself: {reindex} ({})",
                owned_by(t)
            ),
            Vec::new(),
        ),
        Some(t) => (format!("rebuild it; do not drop it: {}", owned_by(t)), vec![reindex]),
        None => (
            format!(
                "rebuild it (if the build failed on the data, e.g. duplicates under a UNIQUE index, fix the data \
                 first), or drop it: DROP INDEX CONCURRENTLY IF EXISTS {}",
                index.index
            ),
            vec![reindex],
        ),
    };
    finding(AuditKind::InvalidIndex, index, problem, fix, sql)
}

pub(super) fn duplicate(index: &AuditIndex, keeper: &AuditIndex) -> AuditFinding {
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
    if let Some(tally) = own::find(&index.index) {
        let fix = format!(
            "keep it: {}. {} serves the same lookups; tally's own indexes are never advised for dropping",
            owned_by(tally),
            keeper.index
        );
        return finding(AuditKind::TallyIndex, index, problem, fix, Vec::new());
    }
    let (caveat, sql) = drop_statements(index);
    let fix = format!("drop {}: {} serves the same queries{caveat}", index.index, keeper.index);
    finding(AuditKind::DuplicateIndex, index, problem, fix, sql)
}

pub(super) fn redundant(index: &AuditIndex, longer: &AuditIndex) -> AuditFinding {
    let problem = format!(
        "{} ({}) is a prefix of {} ({}) on {}: the longer index serves the same lookups",
        index.index,
        index.columns.join(", "),
        longer.index,
        longer.columns.join(", "),
        index.table
    );
    if let Some(tally) = own::find(&index.index) {
        let fix = format!(
            "keep it: {}. If {} is yours, make sure a query needs its extra columns: every write maintains both",
            owned_by(tally),
            longer.index
        );
        return finding(AuditKind::TallyIndex, index, problem, fix, Vec::new());
    }
    let (caveat, sql) = drop_statements(index);
    let fix =
        format!("drop {} (queries that used it use {}, slightly larger, instead){caveat}", index.index, longer.index);
    finding(AuditKind::RedundantIndex, index, problem, fix, sql)
}

/// `since`: the start of the window the index had no scan in, in words.
pub(super) fn unused(index: &AuditIndex, since: &str) -> AuditFinding {
    let problem = format!(
        "{} on {} ({}, {}) has had no index scan since {}, while the table was read {} times; every write \
         maintains it",
        index.index,
        index.table,
        described(index),
        size(index.size_bytes),
        since,
        index.table_reads
    );
    let (caveat, sql) = drop_statements(index);
    let fix = format!(
        "drop it if no query needs it: check standbys too (their scans are not counted here) and rare jobs \
         (month-end reports){caveat}"
    );
    finding(AuditKind::UnusedIndex, index, problem, fix, sql)
}

/// A note, not advice: tally's own index had no scan, and what it is for.
pub(super) fn unscanned_tally_index(index: &AuditIndex, tally: &TallyIndex, since: &str) -> AuditFinding {
    let problem = format!(
        "{} on {} ({}, {}) has had no index scan since {}",
        index.index,
        index.table,
        described(index),
        size(index.size_bytes),
        since
    );
    let fix = format!(
        "keep it: {}. The work it serves may not have run in that time, or runs rarely; tally's own indexes are \
         never advised for dropping",
        owned_by(tally)
    );
    finding(AuditKind::TallyIndex, index, problem, fix, Vec::new())
}

/// `tally's migration 0003_events creates it for ...`.
fn owned_by(tally: &TallyIndex) -> String {
    format!("tally's migration {} creates it for {}", tally.migration, tally.serves)
}

fn size(bytes: i64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{} kB", b / 1024),
    }
}
