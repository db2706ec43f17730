//! How long index usage has been counted. "No scan" means "unused" only
//! over a long enough window: a month-end report, a weekly job, or a query
//! tally runs only in incremental mode would otherwise be advised away the
//! day after a reset, a crash or the database's creation.
//!
//! PostgreSQL (15+) keeps its statistics across a clean restart but loses
//! them all at a crash or an immediate shutdown, without touching the
//! database's `stats_reset`; `pg_postmaster_start_time()` does not move at a
//! crash either (the postmaster survives it). What does move is
//! `pg_stat_bgwriter.stats_reset`: it is set whenever all statistics start
//! afresh (the server's first start, recovery from a crash or an immediate
//! shutdown, and an explicit reset of the shared counters). So the counting
//! began at the latest of: this database's reset, that loss of all
//! statistics, and the database's creation (its `PG_VERSION` file, when the
//! role may read it). A role that may read neither the creation nor a reset
//! would otherwise take a database created yesterday on a server counting
//! for a year as a year old: tally's first migration stands in for the
//! creation then (it cannot be earlier, so the window is never overstated).
//! The server start is used only when none is known.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use sqlx::{AssertSqlSafe, PgPool};

/// Unused-index advice waits until the statistics are this old by default.
pub const DEFAULT_MIN_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the start of the counting was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsSource {
    /// `pg_stat_database.stats_reset`: someone reset this database's statistics.
    DatabaseReset,
    /// `pg_stat_bgwriter.stats_reset`: all statistics started afresh.
    StatisticsLost,
    /// The database was created after the statistics began.
    DatabaseCreated,
    /// tally's first migration (`tally._sqlx_migrations`), standing in for
    /// the database's creation when this role may not read it.
    TallyInstalled,
    /// `pg_postmaster_start_time()`, when nothing better is known.
    ServerStart,
}

impl StatsSource {
    fn describe(self) -> &'static str {
        match self {
            StatsSource::DatabaseReset => "when this database's statistics were reset",
            StatsSource::StatisticsLost => {
                "when the server last started its statistics afresh (first start, crash or immediate shutdown)"
            }
            StatsSource::DatabaseCreated => "when this database was created",
            StatsSource::TallyInstalled => {
                "when tally was installed in this database: the database may be older, but this role may not read \
                 when it was created"
            }
            StatsSource::ServerStart => "when the server started",
        }
    }
}

/// The window over which index scans were counted. Serialized into the
/// audit's `--json` as `stats_since`, `stats_since_source`, `stats_age_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statistics {
    #[serde(rename = "stats_since")]
    pub since: DateTime<Utc>,
    #[serde(rename = "stats_since_source")]
    pub source: StatsSource,
    #[serde(rename = "stats_age_seconds", serialize_with = "seconds")]
    pub age: Duration,
    /// The database's `now()` when this was read: ages are measured to it.
    #[serde(skip)]
    pub now: DateTime<Utc>,
}

/// What is known about when the counting of index scans began.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Starts {
    /// `pg_stat_database.stats_reset`.
    pub database_reset: Option<DateTime<Utc>>,
    /// `pg_stat_bgwriter.stats_reset`.
    pub statistics_lost: Option<DateTime<Utc>>,
    /// The database's `PG_VERSION` file, when the role may read it.
    pub database_created: Option<DateTime<Utc>>,
    /// tally's first migration, when the role may read `tally._sqlx_migrations`.
    pub tally_installed: Option<DateTime<Utc>>,
}

pub(super) fn seconds<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(duration.as_secs())
}

impl Statistics {
    /// The latest of the known starts, or the server start when none is
    /// known. tally's installation counts only when neither the database's
    /// creation nor a reset of its statistics is known: either of those is a
    /// start of its own, and the installation is always after the creation.
    pub fn pick(now: DateTime<Utc>, starts: Starts, server_start: DateTime<Utc>) -> Statistics {
        let creation_unknown = starts.database_created.is_none() && starts.database_reset.is_none();
        let (since, source) = [
            (starts.database_reset, StatsSource::DatabaseReset),
            (starts.statistics_lost, StatsSource::StatisticsLost),
            (starts.database_created, StatsSource::DatabaseCreated),
            (starts.tally_installed.filter(|_| creation_unknown), StatsSource::TallyInstalled),
        ]
        .into_iter()
        .filter_map(|(at, source)| at.map(|at| (at, source)))
        .max_by_key(|(at, _)| *at)
        .unwrap_or((server_start, StatsSource::ServerStart));
        Statistics { since, source, age: (now - since).to_std().unwrap_or_default(), now }
    }

    /// Whether zero scans over this window may be called unused.
    pub fn old_enough(&self, min_age: Duration) -> bool {
        self.age >= min_age
    }

    /// When the statistics will be `min_age` old.
    pub fn old_enough_at(&self, min_age: Duration) -> DateTime<Utc> {
        later_by(self.since, min_age)
    }

    /// `2026-11-30 13:35 UTC (when this database was created)`: the one
    /// wording the header and every unused finding use (the header adds
    /// how long ago; findings stay the same from one run to the next).
    pub fn since_text(&self) -> String {
        format!("{} ({})", timestamp(self.since), self.source.describe())
    }
}

/// Reads when the counting of index scans in this database began.
pub async fn load(pool: &PgPool) -> Result<Statistics, sqlx::Error> {
    type Row = (DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>, DateTime<Utc>, bool, bool);
    let migrations = crate::MIGRATOR.table_name.as_ref();
    let (now, database_reset, statistics_lost, server_start, may_stat_files, may_read_migrations): Row =
        sqlx::query_as(
            "SELECT now(), (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
                    (SELECT stats_reset FROM pg_stat_bgwriter), pg_postmaster_start_time(),
                    has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE'),
                    EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname || '.' || c.relname = $1
                              AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT'))",
        )
        .bind(migrations)
        .fetch_one(pool)
        .await?;
    // pg_stat_file is for superusers and roles granted it (the privilege is
    // checked when a statement naming it starts, so it gets a statement of
    // its own); others count from the loss of all statistics instead.
    let database_created: Option<DateTime<Utc>> = if may_stat_files {
        sqlx::query_scalar(
            "SELECT (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification
             FROM pg_database WHERE datname = current_database()",
        )
        .fetch_one(pool)
        .await?
    } else {
        None
    };
    // Read only when needed (see `pick`); absent in a database tally never migrated.
    let tally_installed: Option<DateTime<Utc>> = if may_read_migrations && database_created.is_none() {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT min(installed_on) FROM {migrations}"))).fetch_one(pool).await?
    } else {
        None
    };
    let starts = Starts { database_reset, statistics_lost, database_created, tally_installed };
    Ok(Statistics::pick(now, starts, server_start))
}

/// `since` plus `wait`, or the end of time when that is past what a
/// timestamp holds (a `--min-stats-age` of centuries).
pub fn later_by(since: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(wait)
        .ok()
        .and_then(|wait| since.checked_add_signed(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `2026-11-30 13:35 UTC`.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A duration for people, to its two largest units: `3 days 4 hours`,
/// `12 minutes`, `0 seconds`.
pub fn duration_text(duration: Duration) -> String {
    let mut left = duration.as_secs();
    let mut parts = Vec::new();
    for (unit, seconds) in [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)] {
        let count = left / seconds;
        left %= seconds;
        if count > 0 && parts.len() < 2 {
            parts.push(format!("{count} {unit}{}", if count == 1 { "" } else { "s" }));
        } else if !parts.is_empty() {
            // Only adjacent units: `3 days 4 minutes` reads as precise when it is not.
            break;
        }
    }
    if parts.is_empty() { "0 seconds".to_string() } else { parts.join(" ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap()
    }

    #[test]
    fn the_latest_known_start_counts_and_the_server_start_only_without_one() {
        let now = at("2026-11-30T12:00:00Z");
        let server = at("2026-10-01T00:00:00Z");
        // A crash on Nov 20 lost everything; the database is older; no reset.
        let crash = Statistics::pick(
            now,
            Starts {
                statistics_lost: Some(at("2026-11-20T12:00:00Z")),
                database_created: Some(at("2026-06-01T00:00:00Z")),
                ..Starts::default()
            },
            server,
        );
        assert_eq!((crash.source, crash.age), (StatsSource::StatisticsLost, Duration::from_secs(10 * 86_400)));
        // A database created an hour ago on a server counting for months.
        let fresh = Statistics::pick(
            now,
            Starts {
                statistics_lost: Some(at("2026-01-01T00:00:00Z")),
                database_created: Some(at("2026-11-30T11:00:00Z")),
                ..Starts::default()
            },
            server,
        );
        assert_eq!((fresh.source, fresh.age), (StatsSource::DatabaseCreated, Duration::from_secs(3_600)));
        assert!(!fresh.old_enough(DEFAULT_MIN_AGE) && fresh.old_enough(Duration::ZERO));
        assert_eq!(fresh.old_enough_at(DEFAULT_MIN_AGE), at("2026-12-07T11:00:00Z"));
        let reset = Statistics::pick(
            now,
            Starts {
                database_reset: Some(at("2026-11-29T12:00:00Z")),
                statistics_lost: Some(at("2026-01-01T00:00:00Z")),
                ..Starts::default()
            },
            server,
        );
        assert_eq!(reset.source, StatsSource::DatabaseReset);
        assert_eq!(reset.since_text(), "2026-11-29 12:00 UTC (when this database's statistics were reset)");
        let unknown = Statistics::pick(now, Starts::default(), server);
        assert_eq!((unknown.source, unknown.since), (StatsSource::ServerStart, server));
    }

    #[test]
    fn without_the_creation_tally_s_installation_keeps_a_new_database_on_an_old_server_young() {
        let now = at("2026-11-30T12:00:00Z");
        let server = at("2026-01-01T00:00:00Z");
        // A role that may not read PG_VERSION: a server counting since January,
        // a database tally was installed in an hour ago.
        let installed = Some(at("2026-11-30T11:00:00Z"));
        let lost = Some(at("2026-01-01T00:00:00Z"));
        let new = Statistics::pick(
            now,
            Starts { statistics_lost: lost, tally_installed: installed, ..Starts::default() },
            server,
        );
        assert_eq!((new.source, new.age), (StatsSource::TallyInstalled, Duration::from_secs(3_600)));
        assert!(new.since_text().contains("when tally was installed in this database"), "{}", new.since_text());
        // The creation, or a reset, is a start of its own: the installation is not needed then.
        let created = Some(at("2026-02-01T00:00:00Z"));
        let known = Statistics::pick(
            now,
            Starts {
                statistics_lost: lost,
                database_created: created,
                tally_installed: installed,
                ..Starts::default()
            },
            server,
        );
        assert_eq!(known.source, StatsSource::DatabaseCreated);
        let reset = Some(at("2026-03-01T00:00:00Z"));
        let known = Statistics::pick(
            now,
            Starts { database_reset: reset, statistics_lost: lost, tally_installed: installed, ..Starts::default() },
            server,
        );
        assert_eq!(known.source, StatsSource::DatabaseReset);
    }

    #[test]
    fn durations_read_to_their_two_largest_adjacent_units() {
        assert_eq!(duration_text(Duration::from_secs(0)), "0 seconds");
        assert_eq!(duration_text(Duration::from_secs(61)), "1 minute 1 second");
        assert_eq!(duration_text(Duration::from_secs(12 * 60 + 5)), "12 minutes 5 seconds");
        assert_eq!(duration_text(Duration::from_secs(3 * 86_400 + 4 * 3_600 + 59)), "3 days 4 hours");
        assert_eq!(duration_text(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(duration_text(Duration::from_secs(86_400 + 60)), "1 day");
    }
}
