//! How long tally has watched one index: the part of the statistics window
//! since tally first saw it. An index's scan counter starts at its creation,
//! so "no scan" over the database's statistics window says nothing about an
//! index created since; tally's first sighting ([`super::sightings`]) is the
//! earliest time it can vouch for. Pure: sightings and statistics in.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::sightings::Sighting;
use super::statistics::{Statistics, later_by, timestamp};

/// What an index's watch starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WatchedFrom {
    /// The statistics window: the index existed when tally installed its
    /// sightings (age unknown), or tally saw it before the window began.
    Statistics,
    /// tally's first sighting, inside the statistics window.
    FirstSeen,
    /// tally has no record of it (recording failed or was not allowed): it
    /// counts as first seen now.
    NotSeenBefore,
}

/// The window over which an index had no scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub since: DateTime<Utc>,
    pub from: WatchedFrom,
    pub watched: Duration,
    /// tally's record of the index, if any.
    pub sighting: Option<Sighting>,
}

impl Watch {
    /// The watch of an index with `sighting`, under `statistics`.
    pub fn of(sighting: Option<&Sighting>, statistics: &Statistics) -> Watch {
        let (since, from) = match sighting {
            None => (statistics.now, WatchedFrom::NotSeenBefore),
            Some(s) if s.at_install || s.first_seen <= statistics.since => (statistics.since, WatchedFrom::Statistics),
            Some(s) => (s.first_seen, WatchedFrom::FirstSeen),
        };
        let watched = (statistics.now - since).to_std().unwrap_or_default();
        Watch { since, from, watched, sighting: sighting.copied() }
    }

    /// Whether zero scans over this watch may be called unused.
    pub fn old_enough(&self, min_age: Duration) -> bool {
        self.watched >= min_age
    }

    /// When the watch will be `min_age` long.
    pub fn old_enough_at(&self, min_age: Duration) -> DateTime<Utc> {
        later_by(self.since, min_age)
    }

    /// The start of the window in a finding's words: the statistics' own
    /// (`... (when this database was created)`), or tally's first sighting.
    pub fn since_text(&self, statistics: &Statistics) -> String {
        match self.from {
            WatchedFrom::Statistics => statistics.since_text(),
            WatchedFrom::FirstSeen => format!("{} (when tally first saw it)", timestamp(self.since)),
            WatchedFrom::NotSeenBefore => format!(
                "{}, or its creation if later (tally has no record of when it first saw it)",
                statistics.since_text()
            ),
        }
    }
}

/// One index with no scan in its window: the `unscanned` entries of `--json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unscanned {
    pub index: String,
    /// One of tally's own (never advised for dropping, only noted).
    pub tally_index: bool,
    /// When tally first saw it; null when it has no record.
    pub first_seen: Option<DateTime<Utc>>,
    /// It existed when tally started keeping sightings (age unknown).
    pub at_install: bool,
    /// The start of the window its zero scans cover.
    pub watched_since: DateTime<Utc>,
    pub watched_from: WatchedFrom,
    #[serde(serialize_with = "super::statistics::seconds")]
    pub watched_seconds: Duration,
    /// Watched less than `--min-stats-age`: not judged.
    pub held_back: bool,
    /// When it will have been watched for `--min-stats-age`; null when tally
    /// has no record of it (it waits for one).
    pub judged_after: Option<DateTime<Utc>>,
}

impl Unscanned {
    pub fn new(index: &str, tally_index: bool, watch: &Watch, min_age: Duration) -> Unscanned {
        Unscanned {
            index: index.to_string(),
            tally_index,
            first_seen: watch.sighting.map(|s| s.first_seen),
            at_install: watch.sighting.is_some_and(|s| s.at_install),
            watched_since: watch.since,
            watched_from: watch.from,
            watched_seconds: watch.watched,
            held_back: !watch.old_enough(min_age),
            judged_after: watch.sighting.map(|_| watch.old_enough_at(min_age)),
        }
    }
}

#[cfg(test)]
mod tests {
    use sqlx::postgres::types::Oid;

    use super::*;
    use crate::doctor::audit::StatsSource;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).unwrap()
    }

    fn sighting(first_seen: &str, at_install: bool) -> Sighting {
        Sighting { index_oid: Oid(16_384), first_seen: at(first_seen), at_install }
    }

    /// Statistics counted since Nov 1 (a reset), as of Nov 30 12:00.
    fn month_old() -> Statistics {
        let now = at("2026-11-30T12:00:00Z");
        let since = at("2026-11-01T00:00:00Z");
        Statistics { since, source: StatsSource::DatabaseReset, age: (now - since).to_std().unwrap(), now }
    }

    #[test]
    fn an_index_first_seen_minutes_ago_is_watched_minutes_however_old_the_statistics() {
        let statistics = month_old();
        let new = Watch::of(Some(&sighting("2026-11-30T11:57:00Z", false)), &statistics);
        assert_eq!((new.from, new.watched), (WatchedFrom::FirstSeen, Duration::from_secs(180)));
        assert!(!new.old_enough(Duration::from_secs(3_600)) && new.old_enough(Duration::from_secs(180)));
        assert_eq!(new.old_enough_at(Duration::from_secs(3_600)), at("2026-11-30T12:57:00Z"));
        assert_eq!(new.since_text(&statistics), "2026-11-30 11:57 UTC (when tally first saw it)");
        // Seen before the window began (a reset since): the window counts.
        let older = Watch::of(Some(&sighting("2026-10-01T00:00:00Z", false)), &statistics);
        assert_eq!((older.from, older.since), (WatchedFrom::Statistics, statistics.since));
        assert_eq!(older.since_text(&statistics), statistics.since_text());
    }

    #[test]
    fn indexes_present_at_install_count_from_the_window_and_unseen_ones_from_now() {
        let statistics = month_old();
        // Recorded at install an hour ago: its age is unknown, the window counts.
        let installed = Watch::of(Some(&sighting("2026-11-30T11:00:00Z", true)), &statistics);
        assert_eq!((installed.from, installed.watched), (WatchedFrom::Statistics, statistics.age));
        let unseen = Watch::of(None, &statistics);
        assert_eq!(
            (unseen.from, unseen.watched, unseen.since),
            (WatchedFrom::NotSeenBefore, Duration::ZERO, statistics.now)
        );
        assert!(!unseen.old_enough(Duration::from_secs(1)) && unseen.old_enough(Duration::ZERO));
        assert!(unseen.since_text(&statistics).contains("tally has no record of when it first saw it"));
        // No overflow at the largest threshold.
        assert_eq!(installed.old_enough_at(Duration::MAX), DateTime::<Utc>::MAX_UTC);
    }
}
