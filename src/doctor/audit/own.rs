//! tally's own indexes: the ones its migrations create, each for a query
//! documented in docs/schema.md. The audit never advises dropping them (a
//! query tally runs, rarely or not yet, needs each); it says what each serves.
//!
//! Which indexes are tally's comes from the embedded migrations
//! ([`crate::MIGRATOR`]), the one source of truth: a migration that adds,
//! renames or drops an index changes this list without anything else to
//! edit. What each serves is [`SERVES`]; a test holds the two, and
//! docs/schema.md, to each other.

use std::sync::OnceLock;

/// An index one of tally's migrations creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TallyIndex {
    /// `schema.name`, as the audit names indexes.
    pub index: String,
    /// `schema.name` of its table.
    pub table: String,
    /// The migration that creates it, e.g. `0003_events`.
    pub migration: String,
    /// The queries it serves, for people.
    pub serves: &'static str,
    /// `tally migrate` (and the worker at start-up) rebuilds it when an
    /// interrupted concurrent build left it INVALID.
    pub repaired_by_migrate: bool,
}

/// What each of tally's indexes serves (docs/schema.md says the same, at length).
pub const SERVES: &[(&str, &str)] = &[
    (
        "marketing.leads_source_campaign_created_at_idx",
        "campaign drill-downs and attribution: source = ... AND campaign = ... AND created_at ranges, ordered by \
         created_at",
    ),
    ("marketing.leads_status_open_idx", "the sales queue: open leads by status (partial, so it stays small)"),
    ("marketing.leads_user_id_idx", "attribution: the lead of a user, and that user's events"),
    (
        "marketing.conversions_lead_id_idx",
        "joins of conversions to leads, and the foreign-key check when a lead is deleted or its id changes, \
         which without it reads every conversion",
    ),
    (
        "marketing.conversions_occurred_at_idx",
        "conversions of a day range: dashboards and daily_attribution's per-day recomputation",
    ),
    (
        "marketing.events_event_id_occurred_at_key",
        "idempotent ingest: INSERT ... ON CONFLICT DO NOTHING on the source document id",
    ),
    (
        "marketing.events_occurred_at_idx",
        "time ranges: the aggregates' per-day recomputation (incremental mode) and moving rows out of the default \
         partition",
    ),
    (
        "marketing.events_user_id_occurred_at_idx",
        "one user's events in time order: attribution's touches (user_id = ... AND occurred_at in the lookback window)",
    ),
    (
        "marketing.events_properties_idx",
        "containment queries on properties: WHERE properties @> '{\"url\": \"/pricing\"}'",
    ),
    (
        "tally.refresh_runs_aggregate_started_at_idx",
        "tally status and the worker's start-up: each aggregate's latest refresh attempt",
    ),
    (
        "tally.refresh_runs_success_idx",
        "each aggregate's latest successful refresh (freshness read back after a restart)",
    ),
    (
        "tally.invalidations_aggregate_idx",
        "incremental refreshes claiming an aggregate's dirty days (WHERE aggregate = ...)",
    ),
    (
        "marketing.leads_created_at_idx",
        "incremental daily_lead_funnel refreshes, which recompute leads by created_at ranges",
    ),
];

/// Every index tally's migrations leave in place, in migration order.
pub fn tally_indexes() -> &'static [TallyIndex] {
    static INDEXES: OnceLock<Vec<TallyIndex>> = OnceLock::new();
    INDEXES.get_or_init(|| {
        let repaired: Vec<String> =
            crate::db::concurrent_migration_indexes().into_iter().map(|(name, _)| name).collect();
        let mut indexes: Vec<TallyIndex> = Vec::new();
        for migration in crate::MIGRATOR.iter() {
            let label = format!("{:04}_{}", migration.version, migration.description.replace(' ', "_"));
            for change in changes(migration.sql.as_str()) {
                match change {
                    Change::Create { index, table } => {
                        let name = index.rsplit_once('.').map_or(index.as_str(), |(_, n)| n);
                        indexes.push(TallyIndex {
                            serves: SERVES.iter().find(|(i, _)| *i == index).map_or("", |(_, s)| s),
                            repaired_by_migrate: repaired.iter().any(|r| r == name),
                            index,
                            table,
                            migration: label.clone(),
                        });
                    }
                    Change::Drop { index } => indexes.retain(|i| i.index != index),
                    Change::Rename { index, to } => {
                        if let Some(renamed) = indexes.iter_mut().find(|i| i.index == index) {
                            renamed.index = to;
                        }
                    }
                }
            }
        }
        indexes
    })
}

/// The tally index named `index` (`schema.name`), if it is one.
pub fn find(index: &str) -> Option<&'static TallyIndex> {
    tally_indexes().iter().find(|i| i.index == index)
}

/// What a migration does to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Create { index: String, table: String },
    Drop { index: String },
    Rename { index: String, to: String },
}

/// The index statements of a migration: `CREATE [UNIQUE] INDEX [CONCURRENTLY]
/// [IF NOT EXISTS] name ON [ONLY] schema.table`, `DROP INDEX [CONCURRENTLY]
/// [IF EXISTS] schema.name, ...`, `ALTER INDEX [IF EXISTS] schema.name RENAME
/// TO name`. tally's migrations qualify every table; the index lives in its
/// table's schema.
fn changes(sql: &str) -> Vec<Change> {
    let words = words(sql);
    let is = |at: usize, word: &str| words.get(at).is_some_and(|w| w.eq_ignore_ascii_case(word));
    let mut found = Vec::new();
    for start in 0..words.len() {
        let mut at = start + 1;
        let skip = |at: &mut usize, sequence: &[&str]| {
            if sequence.iter().enumerate().all(|(k, w)| is(*at + k, w)) {
                *at += sequence.len();
            }
        };
        if is(start, "CREATE") {
            skip(&mut at, &["UNIQUE"]);
            if !is(at, "INDEX") {
                continue;
            }
            at += 1;
            skip(&mut at, &["CONCURRENTLY"]);
            skip(&mut at, &["IF", "NOT", "EXISTS"]);
            let (Some(name), true) = (words.get(at), is(at + 1, "ON")) else { continue };
            at += 2;
            skip(&mut at, &["ONLY"]);
            let Some(table) = words.get(at) else { continue };
            let Some((schema, _)) = table.split_once('.') else { continue };
            found.push(Change::Create { index: format!("{schema}.{name}"), table: table.clone() });
        } else if is(start, "DROP") && is(start + 1, "INDEX") {
            at += 1;
            skip(&mut at, &["CONCURRENTLY"]);
            skip(&mut at, &["IF", "EXISTS"]);
            while let Some(index) = words.get(at).filter(|w| w.contains('.')) {
                found.push(Change::Drop { index: index.clone() });
                if !is(at + 1, ",") {
                    break;
                }
                at += 2;
            }
        } else if is(start, "ALTER") && is(start + 1, "INDEX") {
            at += 1;
            skip(&mut at, &["IF", "EXISTS"]);
            if let (Some(index), true, true, Some(to)) =
                (words.get(at), is(at + 1, "RENAME"), is(at + 2, "TO"), words.get(at + 3))
                && let Some((schema, _)) = index.split_once('.')
            {
                found.push(Change::Rename { index: index.clone(), to: format!("{schema}.{to}") });
            }
        }
    }
    found
}

/// The words of `sql` without `--` comments, lowercased (unquoted names fold
/// to lowercase); `(`, `)`, `,` and `;` are words of their own.
fn words(sql: &str) -> Vec<String> {
    let mut text = String::with_capacity(sql.len());
    for line in sql.lines() {
        text.push_str(line.split_once("--").map_or(line, |(code, _)| code));
        text.push('\n');
    }
    for separator in ['(', ')', ',', ';'] {
        text = text.replace(separator, &format!(" {separator} "));
    }
    text.split_whitespace().map(str::to_lowercase).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_statements_are_read_from_migration_sql() {
        let sql = "-- CREATE INDEX commented_out ON marketing.x (a);
            CREATE UNIQUE INDEX events_key
                ON marketing.events (event_id, occurred_at) WHERE event_id IS NOT NULL;
            CREATE INDEX CONCURRENTLY IF NOT EXISTS leads_created_at_idx ON marketing.leads (created_at);
            CREATE INDEX x_gin ON ONLY marketing.events USING gin (properties jsonb_path_ops);
            CREATE TABLE tally.t (id int PRIMARY KEY);
            ALTER INDEX IF EXISTS marketing.x_gin RENAME TO x_properties_idx;
            DROP INDEX CONCURRENTLY IF EXISTS marketing.a_idx, marketing.b_idx;";
        assert_eq!(
            changes(sql),
            [
                Change::Create { index: "marketing.events_key".into(), table: "marketing.events".into() },
                Change::Create { index: "marketing.leads_created_at_idx".into(), table: "marketing.leads".into() },
                Change::Create { index: "marketing.x_gin".into(), table: "marketing.events".into() },
                Change::Rename { index: "marketing.x_gin".into(), to: "marketing.x_properties_idx".into() },
                Change::Drop { index: "marketing.a_idx".into() },
                Change::Drop { index: "marketing.b_idx".into() },
            ]
        );
    }

    #[test]
    fn every_index_the_migrations_create_is_known_with_what_it_serves_and_documented() {
        let indexes = tally_indexes();
        assert!(indexes.len() >= 13, "{indexes:#?}");
        let schema_doc = include_str!("../../../docs/schema.md");
        for index in indexes {
            assert!(!index.serves.is_empty(), "{} ({}) has no entry in SERVES", index.index, index.migration);
            let name = index.index.rsplit_once('.').map_or("", |(_, n)| n);
            assert!(schema_doc.contains(&format!("`{name}`")), "docs/schema.md does not list {name}");
        }
        for (index, _) in SERVES {
            assert!(find(index).is_some(), "SERVES lists {index}, which no migration creates");
        }
        let events = find("marketing.events_occurred_at_idx").map(|i| (i.table.as_str(), i.migration.as_str()));
        assert_eq!(events, Some(("marketing.events", "0003_events")));
        // The one built CONCURRENTLY by a no-transaction migration is the one `tally migrate` repairs.
        let repaired: Vec<&str> = indexes.iter().filter(|i| i.repaired_by_migrate).map(|i| i.index.as_str()).collect();
        assert_eq!(repaired, ["marketing.leads_created_at_idx"]);
    }
}
