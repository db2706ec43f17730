//! The index audit (`tally doctor`, `tally explain --audit`): indexes that
//! cost every write but serve no read. Duplicates (same table, method, keys,
//! operator classes, predicate), prefix-redundant B-trees (their keys lead
//! another B-tree with the same predicate), invalid ones left by a failed or
//! interrupted concurrent build, and unused ones: no scan over statistics
//! old enough to say so ([`statistics`]), during which tally has watched the
//! index for long enough ([`sightings`], [`watch`]). tally's own indexes
//! ([`own`]) are never advised away: the audit says what each serves
//! instead. Rules are pure and unit-tested (`rules.rs` builds one
//! [`AuditFinding`] per problem); [`load`], [`statistics::load`] and
//! [`sightings`] read the catalogs and tally's bookkeeping.

mod finding;
mod load;
pub mod own;
mod rules;
pub mod sightings;
pub mod statistics;
#[cfg(test)]
mod tests;
pub mod watch;

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use sqlx::postgres::types::Oid;

pub use finding::{AuditFinding, AuditKind};
pub use load::load;
pub use sightings::{Sighting, SightingsStatus};
pub use statistics::{DEFAULT_MIN_AGE, Statistics, StatsSource};
pub use watch::{Unscanned, Watch, WatchedFrom};

use super::DoctorError;

/// One index as the audit sees it. Partition indexes attached to a
/// partitioned index are judged through their parent (their scans and sizes
/// are summed into it).
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct AuditIndex {
    /// What PostgreSQL's statistics, and tally's sightings, know it by.
    pub oid: Oid,
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
    /// A foreign key of its own table whose columns lead it: deleting or
    /// re-keying a referenced row looks the referencing rows up through it,
    /// however rarely that happens, so no scan count makes it unused.
    pub foreign_key: Option<String>,
    /// An index of a partitioned table (`ON` the parent).
    pub partitioned: bool,
    /// A CREATE INDEX or REINDEX is building it right now.
    pub in_progress: bool,
    /// Index scans since the statistics began (all partitions).
    pub scans: i64,
    pub size_bytes: i64,
    /// Sequential and index scans of the table (all partitions).
    pub table_reads: i64,
    /// `USING ...` part of its definition (`btree (a, b) WHERE ...`).
    pub using: String,
    /// Leaf partitions without an attached index (an invalid partitioned index).
    pub missing_partitions: Vec<String>,
    /// When tally first saw it; `None` when it has no record.
    #[sqlx(skip)]
    pub sighting: Option<Sighting>,
}

/// How the audit judges.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Indexes with no scan are reported unused only once the statistics
    /// are this old, and tally has watched the index this long (`--min-stats-age`).
    pub min_stats_age: Duration,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions { min_stats_age: DEFAULT_MIN_AGE }
    }
}

/// What `tally doctor` found: the `--json` document.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub schemas: Vec<String>,
    pub indexes_checked: usize,
    /// Since when index scans were counted (`stats_since`, `stats_since_source`, `stats_age_seconds`).
    #[serde(flatten)]
    pub statistics: Statistics,
    /// `--min-stats-age`, in seconds.
    pub min_stats_age_seconds: u64,
    /// The statistics are younger than `--min-stats-age`, so no index was
    /// reported unused.
    pub unused_held_back: bool,
    /// Indexes (not tally's own) with no scan in the window: reported unused
    /// unless held back.
    pub unscanned_indexes: usize,
    /// tally's own indexes with no scan in the window (never advised for dropping).
    pub unscanned_tally_indexes: usize,
    /// Of `unscanned_indexes`, those not judged: watched less than `--min-stats-age`.
    pub indexes_held_back: usize,
    /// Whether this run recorded the indexes it saw and could read the record.
    pub index_sightings: SightingsStatus,
    /// Why not, in PostgreSQL's words.
    pub index_sightings_problem: Option<String>,
    /// Each index counted in `unscanned_indexes` or `unscanned_tally_indexes`,
    /// with when tally first saw it and whether it was held back.
    pub unscanned: Vec<Unscanned>,
    pub findings: Vec<AuditFinding>,
}

/// Audits every index in the schemas other than PostgreSQL's own, after
/// recording the indexes tally had not seen (a role that may not write
/// tally's schema still gets an audit: see [`sightings::record_and_load`]).
pub async fn run(pool: &PgPool, options: &AuditOptions) -> Result<AuditReport, DoctorError> {
    let (sightings, index_sightings, index_sightings_problem) = sightings::record_and_load(pool).await;
    let (mut indexes, schemas) = load(pool).await.map_err(|e| DoctorError::database("reading the indexes", &e))?;
    let sightings: HashMap<Oid, Sighting> = sightings.into_iter().map(|s| (s.index_oid, s)).collect();
    for index in &mut indexes {
        index.sighting = sightings.get(&index.oid).copied();
    }
    let statistics = statistics::load(pool).await.map_err(|e| {
        DoctorError::database(
            "reading when index statistics began (pg_stat_database, pg_stat_bgwriter, tally._sqlx_migrations)",
            &e,
        )
    })?;
    let audit = audit(&indexes, &statistics, options.min_stats_age);
    Ok(AuditReport {
        schemas,
        indexes_checked: indexes.len(),
        unused_held_back: !statistics.old_enough(options.min_stats_age),
        statistics,
        min_stats_age_seconds: options.min_stats_age.as_secs(),
        unscanned_indexes: audit.unscanned,
        unscanned_tally_indexes: audit.unscanned_tally,
        indexes_held_back: audit.held_back,
        index_sightings,
        index_sightings_problem,
        unscanned: audit.watched,
        findings: audit.findings,
    })
}

/// What the rules concluded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Audit {
    pub findings: Vec<AuditFinding>,
    /// Indexes, not tally's, with no scan (unused when the statistics are old enough).
    pub unscanned: usize,
    /// tally's own indexes with no scan.
    pub unscanned_tally: usize,
    /// Of `unscanned`, those watched too briefly to judge.
    pub held_back: usize,
    /// Each index counted in `unscanned` or `unscanned_tally`, and its watch.
    pub watched: Vec<Unscanned>,
}

/// Every finding about `indexes`: invalid, duplicate, redundant, then unused
/// (an index is reported once, for its most serious problem). Unused ones
/// only when watched at least `min_stats_age`: the part of the `statistics`
/// window since tally first saw the index ([`Watch`]); tally's own get a
/// note of what they serve instead of a drop.
pub fn audit(indexes: &[AuditIndex], statistics: &Statistics, min_stats_age: Duration) -> Audit {
    let mut findings = Vec::new();
    let mut reported: Vec<&str> = Vec::new();
    for index in indexes.iter().filter(|i| !i.valid && !i.in_progress) {
        findings.push(rules::invalid(index, own::find(&index.index)));
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
        // A duplicate: the other index is kept (constraint, tally's, unique, more used, or first by name).
        if let Some(keeper) = usable.iter().filter(same).find(|other| {
            other.signature == index.signature && other.include == index.include && rules::keeps_over(other, index)
        }) {
            findings.push(rules::duplicate(index, keeper));
            reported.push(&index.index);
            continue;
        }
        // Prefix-redundant: a non-unique B-tree whose keys lead a longer B-tree.
        if index.method == "btree" && !index.unique && index.include.is_empty() {
            let longer = usable.iter().filter(same).find(|other| {
                other.signature.len() > index.signature.len() && other.signature.starts_with(&index.signature)
            });
            if let Some(longer) = longer {
                findings.push(rules::redundant(index, longer));
                reported.push(&index.index);
                continue;
            }
        }
    }
    let unscanned = usable.iter().filter(|index| {
        index.constraint.is_none()
            && !index.unique
            && index.scans == 0
            && index.table_reads > 0
            && !reported.contains(&index.index.as_str())
    });
    let mut audit = Audit::default();
    for index in unscanned {
        let tally = own::find(&index.index);
        // A foreign key's lookups need it, however rarely they run.
        if tally.is_none() && index.foreign_key.is_some() {
            continue;
        }
        let watch = Watch::of(index.sighting.as_ref(), statistics);
        let entry = Unscanned::new(&index.index, tally.is_some(), &watch, min_stats_age);
        let held_back = entry.held_back;
        audit.watched.push(entry);
        let since = watch.since_text(statistics);
        match tally {
            Some(tally) => {
                audit.unscanned_tally += 1;
                if !held_back {
                    findings.push(rules::unscanned_tally_index(index, tally, &since));
                }
            }
            None => {
                audit.unscanned += 1;
                audit.held_back += usize::from(held_back);
                if !held_back {
                    findings.push(rules::unused(index, &since));
                }
            }
        }
    }
    audit.findings = findings;
    audit
}
