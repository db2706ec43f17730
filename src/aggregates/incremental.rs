//! `incremental` mode: the aggregate is a plain table (same name, columns
//! and unique key as the materialized view of `concurrently` mode) in which a
//! refresh rewrites only the dirty days.
//!
//! Statement triggers on the source tables ([`super::triggers`]) append marks to
//! `tally.invalidations`. A refresh, in one transaction holding the
//! aggregate's advisory lock:
//!
//! 1. claims the marks with `DELETE ... RETURNING`: exactly the marks
//!    committed before that statement's snapshot; a mark committed later
//!    stays for the next refresh (writers never wait for a refresh);
//! 2. turns them into days (attribution's touch windows and lead changes
//!    become the days of the conversions they can affect);
//! 3. deletes those days from the table and inserts them recomputed by the
//!    aggregate's own definition, restricted to those days' time ranges.
//!
//! A claimed mark's rows committed with it, before step 1, so step 3 (a later
//! snapshot) sees them. Readers see the old days until the commit, then the
//! new ones: never a gap.

use chrono::{Datelike, Days, NaiveDate};
use sqlx::{AssertSqlSafe, PgConnection};

use super::catalog;
use super::concurrently::count_rows;
use super::hierarchy::{self, Changed};
use super::{Aggregate, ModeError, RefreshKind, build};
use crate::config::{Config, Mode};
use crate::db::template::render;
use crate::db::{execute, quote_ident};

/// The least work_mem of a rewrite and of a live read's recomputation: one
/// day of 27,000 events sorts in about 4.4 MB, just over PostgreSQL's default
/// (4 MB), and spilled to disk (docs/incremental.md).
pub(super) const WORK_MEM: &str = "32MB";
/// Shared marks become their members' own (`sql/incremental/distribute.sql`).
const DISTRIBUTE: &str = include_str!("../../sql/incremental/distribute.sql");
/// The claim of the marks (`sql/incremental/claim.sql`).
const CLAIM: &str = include_str!("../../sql/incremental/claim.sql");
/// The days a set of marks dirties (`sql/incremental/dirty.sql`).
const DIRTY: &str = include_str!("../../sql/incremental/dirty.sql");
/// Whole days, keyed days and key values of a set of marks (`sql/incremental/split.sql`).
const SPLIT: &str = include_str!("../../sql/incremental/split.sql");
/// The days of the fact rows a `join` mark names (`sql/incremental/joined_days.sql`).
const JOINED_DAYS: &str = include_str!("../../sql/incremental/joined_days.sql");
/// Past this many key values waiting, keyed days are rewritten (and read live) whole.
pub const MAX_KEYS: usize = 64;
/// The days waiting per aggregate (`sql/incremental/backlog.sql`).
const BACKLOG: &str = include_str!("../../sql/incremental/backlog.sql");

/// What a refresh in incremental mode did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub kind: RefreshKind,
    pub rows: i64,
    /// Periods rewritten: days, or weeks or months for a rollup of rollups
    /// (`None` after a full build).
    pub days: Option<i64>,
}

/// Brings the aggregate up to date inside the caller's transaction.
pub async fn refresh(conn: &mut PgConnection, aggregate: &Aggregate, config: &Config) -> Result<Outcome, ModeError> {
    hierarchy::require_inputs(conn, aggregate).await?;
    let features = super::Features::detect(conn).await?;
    let definition = aggregate.definition(config, features);
    let fingerprint = build::fingerprint(conn, &definition, Mode::Incremental).await?;
    let (kind, rewritten) = match catalog::relation(conn, aggregate.name).await? {
        None => {
            // Marks committed before this point are covered by the build, which reads a later snapshot.
            claim(conn, aggregate, config).await?;
            build::create(conn, aggregate, aggregate.name, Mode::Incremental, &definition, &fingerprint).await?;
            (RefreshKind::Built, None)
        }
        Some(existing) if !build::is_tallys(&existing) && existing.relkind != "m" => {
            return Err(ModeError::WrongKind { name: aggregate.name, relkind: existing.relkind });
        }
        Some(existing) if existing.relkind != "r" || existing.comment.as_deref() != Some(fingerprint.as_str()) => {
            claim(conn, aggregate, config).await?;
            build::rebuild(conn, aggregate, config, &existing, Mode::Incremental, &definition, &fingerprint).await?;
            (RefreshKind::Rebuilt, None)
        }
        Some(_) => {
            let claimed = claim(conn, aggregate, config).await?;
            let table = aggregate.qualified_name();
            if claimed.everything {
                execute(conn, format!("DELETE FROM {table}")).await?;
                execute(conn, format!("INSERT INTO {table} {definition}")).await?;
                (RefreshKind::Incremental, None)
            } else {
                let periods = rewrite(conn, aggregate, config, features, &claimed).await?;
                let mut days = claimed.days;
                days.extend(claimed.keyed);
                days.sort();
                (RefreshKind::Incremental, Some((periods, days)))
            }
        }
    };
    let changed = match &rewritten {
        Some((_, days)) => Changed::Days(days),
        None if kind == RefreshKind::Rebuilt => Changed::Replaced,
        None => Changed::Everything,
    };
    hierarchy::after_refresh(conn, aggregate, config, changed).await?;
    super::live::ensure(conn, aggregate, config, features).await?;
    Ok(Outcome { kind, rows: count_rows(conn, aggregate).await?, days: rewritten.map(|(periods, _)| periods) })
}

/// The marks a refresh took over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    pub marks: i64,
    /// A TRUNCATE dirtied everything.
    pub everything: bool,
    /// The days to rewrite whole, sorted.
    pub days: Vec<NaiveDate>,
    /// The days to rewrite only for `keys` (the live key's values), sorted.
    pub keyed: Vec<NaiveDate>,
    pub keys: Vec<String>,
}

/// The common table expressions that split `marks` (a relation with the
/// columns of a mark) into whole days, keyed days and key values. A mark is
/// keyed only for an aggregate with a live key.
pub(super) fn split(aggregate: &Aggregate, config: &Config, marks: &str) -> String {
    let tz = config.reporting_timezone.sql_literal();
    let joined = joined_days(aggregate, &tz, "split_whole_marks");
    let dirty = render(DIRTY, &[("marks", "split_whole_marks"), ("tz", &tz), ("joined", &joined)]);
    let keyed = match aggregate.live_key {
        Some(_) => "usable_keys AND kind = 'days' AND first_day = last_day",
        None => "false",
    };
    render(SPLIT, &[("marks", marks), ("dirty", &dirty), ("keyed", keyed), ("max_keys", &MAX_KEYS.to_string())])
}

/// The union branches turning `join` marks into days, one per fact column
/// that a joined table's rule names ([`super::DirtyRule::Joined`]).
fn joined_days(aggregate: &Aggregate, tz: &str, marks: &str) -> String {
    let mut columns: Vec<(&str, &str, &str, super::DayIn)> = Vec::new();
    for rule in aggregate.dirtied_by {
        if let super::DirtyRule::Joined { fact, fact_column, fact_day, day, .. } = *rule
            && !columns.iter().any(|c| c.1 == fact_column)
        {
            columns.push((fact, fact_column, fact_day, day));
        }
    }
    let branches: Vec<String> = columns
        .iter()
        .map(|(fact, column, fact_day, day)| {
            let fact = super::triggers::qualified(fact);
            render(
                JOINED_DAYS,
                &[
                    ("day", &day.of(&format!("f.{}", quote_ident(fact_day)), tz)),
                    ("marks", marks),
                    ("fact", &fact),
                    ("column", &quote_ident(column)),
                    ("via", &crate::db::quote_literal(column)),
                ],
            )
        })
        .collect();
    branches.join("\n")
}

/// Deletes the aggregate's committed marks and returns what they dirty.
pub(super) async fn claim(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<Claimed, sqlx::Error> {
    let claim = render(CLAIM, &[("split", &split(aggregate, config, "claimed"))]);
    let (marks, everything, days, keyed, keys): (i64, bool, Vec<NaiveDate>, Vec<NaiveDate>, Vec<String>) =
        sqlx::query_as(AssertSqlSafe(claim)).bind(aggregate.name).fetch_one(conn).await?;
    Ok(Claimed { marks, everything, days, keyed, keys })
}

/// Turns the shared marks (one per statement for every aggregate with the
/// same rule) into each member's own, identical ones merged, in a short
/// transaction of its own before a refresh's: its locks last milliseconds,
/// and a refresh's claim then sees every mark committed before it began.
/// Two at once: the second waits for the first, then finds nothing left.
pub async fn distribute(pool: &sqlx::PgPool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(DISTRIBUTE).execute(pool).await?.rows_affected())
}

/// Replaces the periods holding the claimed days (the days themselves, for
/// a daily rollup) with their recomputed rows, and of the keyed days only
/// the rows of the claimed key values; returns how many periods.
async fn rewrite(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
    features: super::Features,
    claimed: &Claimed,
) -> Result<i64, sqlx::Error> {
    let days = &claimed.days;
    let keyed = aggregate.live_key.filter(|_| !claimed.keyed.is_empty());
    if days.is_empty() && keyed.is_none() {
        return Ok(0);
    }
    let (periods, covered) = aggregate.period.covering(days);
    let table = aggregate.qualified_name();
    // The planner prices a few days' join from table-wide statistics; at 10M
    // events its estimate passes the JIT thresholds, and compiling took 2.1 s
    // where the statement runs in 80 ms (BENCHMARKS.md). Until the commit.
    // work_mem is raised to WORK_MEM when lower, never lowered. One round trip.
    execute(
        conn,
        format!(
            "SELECT set_config('jit', 'off', true), \
                    CASE WHEN pg_size_bytes(current_setting('work_mem')) < pg_size_bytes('{WORK_MEM}') \
                         THEN set_config('work_mem', '{WORK_MEM}', true) END"
        ),
    )
    .await?;
    let column = crate::db::quote_ident(aggregate.period.column());
    let Some(key) = keyed else {
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE {column} = ANY($1)")))
            .bind(&periods)
            .execute(&mut *conn)
            .await?;
        execute(conn, format!("INSERT INTO {table} {}", aggregate.days_definition(config, features, &covered))).await?;
        return Ok(periods.len() as i64);
    };
    // Keyed days (a daily rollup: periods are days): the key values are
    // bound as a parameter, never written into the statement.
    let key_column = crate::db::quote_ident(key.column);
    sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE {column} = ANY($1) OR ({column} = ANY($2) AND {key_column} = ANY($3))"
    )))
    .bind(days)
    .bind(&claimed.keyed)
    .bind(&claimed.keys)
    .persistent(false)
    .execute(&mut *conn)
    .await?;
    let definition = aggregate.keyed_definition(config, features, days, &claimed.keyed);
    sqlx::query(AssertSqlSafe(format!("INSERT INTO {table} {definition}")))
        .bind(&claimed.keys)
        .persistent(false)
        .execute(&mut *conn)
        .await?;
    Ok((days.len() + claimed.keyed.len()) as i64)
}

/// The condition on `column` selecting exactly the rows whose day (in the
/// timezone `tz`, a quoted literal) is one of `days`: one time range per run
/// of consecutive days, so each is an index range scan and partitions outside
/// them are pruned.
pub fn scope(column: &str, tz: &str, days: &[NaiveDate]) -> String {
    let ranges: Vec<String> = runs(days)
        .iter()
        .map(|(first, last)| time_range(column, tz, *first, last.checked_add_days(Days::new(1)).unwrap_or(*last)))
        .collect();
    or_all(ranges)
}

/// `column` from midnight of `from` to midnight of `after` (excluded), in `tz`.
fn time_range(column: &str, tz: &str, from: NaiveDate, after: NaiveDate) -> String {
    format!(
        "({column} >= ('{from}'::timestamp AT TIME ZONE {tz}) AND {column} < ('{after}'::timestamp AT TIME ZONE {tz}))"
    )
}

/// A condition on `column`, the time of attribution touches, that every
/// touch of a conversion of `days` meets: from `lookback_days` + 1 days
/// before each run's first day (the window counts calendar days in the
/// session's timezone, so a DST change moves it by an hour; the extra day
/// covers that) to the end of its last day. Only ever wider than the touch
/// window, so the rows are those of the full definition; with literal
/// bounds, the planner prunes the partitions outside them. `true` when a
/// bound would leave the dates PostgreSQL holds.
pub fn touch_scope(column: &str, tz: &str, days: &[NaiveDate], lookback_days: u32) -> String {
    let ranges: Option<Vec<String>> = runs(days)
        .iter()
        .map(|(first, last)| {
            let from = first.checked_sub_days(Days::new(u64::from(lookback_days) + 1)).filter(|d| d.year() >= 1)?;
            let after = last.checked_add_days(Days::new(1)).filter(|d| d.year() <= 9999)?;
            Some(time_range(column, tz, from, after))
        })
        .collect();
    match ranges {
        Some(ranges) if !ranges.is_empty() => or_all(ranges),
        _ => "true".to_string(),
    }
}

/// The same for a calendar-date column.
pub fn date_scope(column: &str, days: &[NaiveDate]) -> String {
    or_all(
        runs(days)
            .iter()
            .map(|(first, last)| format!("({column} BETWEEN '{first}'::date AND '{last}'::date)"))
            .collect(),
    )
}

fn or_all(ranges: Vec<String>) -> String {
    if ranges.is_empty() { "false".to_string() } else { format!("({})", ranges.join(" OR ")) }
}

/// Sorted, distinct days as runs of consecutive days (first, last).
pub(super) fn runs(days: &[NaiveDate]) -> Vec<(NaiveDate, NaiveDate)> {
    let mut sorted = days.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut runs: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    for day in sorted {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add_days(Days::new(1)) == Some(day) => *last = day,
            _ => runs.push((day, day)),
        }
    }
    runs
}

/// Days waiting in `tally.invalidations` for each aggregate (an upper bound:
/// a touch window counts all its days, a lead change counts one).
pub async fn backlog(pool: &sqlx::PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(BACKLOG).fetch_all(pool).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn consecutive_days_become_one_range_each() {
        let days = [d(2026, 11, 3), d(2026, 11, 1), d(2026, 11, 2), d(2026, 12, 31), d(2027, 1, 1), d(2026, 11, 2)];
        let scope = scope("e.occurred_at", "'UTC'", &days);
        assert_eq!(
            scope,
            "((e.occurred_at >= ('2026-11-01'::timestamp AT TIME ZONE 'UTC') AND e.occurred_at < ('2026-11-04'::timestamp AT TIME ZONE 'UTC')) \
             OR (e.occurred_at >= ('2026-12-31'::timestamp AT TIME ZONE 'UTC') AND e.occurred_at < ('2027-01-02'::timestamp AT TIME ZONE 'UTC')))"
        );
        assert_eq!(super::scope("c.occurred_at", "'UTC'", &[]), "false");
        assert_eq!(
            date_scope("s.day", &[d(2026, 11, 2), d(2026, 11, 1), d(2026, 11, 9)]),
            "((s.day BETWEEN '2026-11-01'::date AND '2026-11-02'::date) OR (s.day BETWEEN '2026-11-09'::date AND '2026-11-09'::date))"
        );
    }

    #[test]
    fn touch_scope_widens_each_run_by_the_lookback_and_a_day() {
        let days = [d(2026, 11, 3), d(2026, 11, 2), d(2026, 12, 31)];
        assert_eq!(
            touch_scope("e.occurred_at", "'UTC'", &days, 30),
            "((e.occurred_at >= ('2026-10-02'::timestamp AT TIME ZONE 'UTC') AND e.occurred_at < ('2026-11-04'::timestamp AT TIME ZONE 'UTC')) \
             OR (e.occurred_at >= ('2026-11-30'::timestamp AT TIME ZONE 'UTC') AND e.occurred_at < ('2027-01-01'::timestamp AT TIME ZONE 'UTC')))"
        );
        // Bounds PostgreSQL's dates cannot hold: no narrowing at all.
        assert_eq!(touch_scope("e.occurred_at", "'UTC'", &[d(1, 1, 20), d(2026, 1, 1)], 30), "true");
        assert_eq!(touch_scope("e.occurred_at", "'UTC'", &[d(9999, 12, 31)], 30), "true");
        assert_eq!(touch_scope("e.occurred_at", "'UTC'", &[], 30), "true");
    }
}
