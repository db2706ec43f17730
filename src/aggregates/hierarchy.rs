//! What a refresh owes the aggregates that read it, in its own transaction:
//!
//! - rollups of rollups (`weekly_campaign_metrics` reads
//!   `daily_campaign_metrics`) in incremental mode have no triggers: the
//!   rollup they read marks for them the days it rewrote, or everything
//!   after a build, a rebuild, a full recomputation or a refresh in
//!   concurrently mode. The marks commit with the rewrite, so a dependent's
//!   claim never sees one without the other.
//! - in concurrently mode they are materialized views over the rollup they
//!   read, so replacing that rollup (build and swap) drops them
//!   ([`drop_dependents`]), and they are built again before the commit:
//!   readers never see them missing.
//! - plain views ([`super::views`]) are created or replaced.

use chrono::NaiveDate;
use sqlx::{AssertSqlSafe, PgConnection};

use super::{Aggregate, Features, Kind, ModeError, build, catalog, views};
use crate::config::{Config, Mode};
use crate::db::execute;

/// The marks a rollup writes for a rollup that reads it (`sql/incremental/marks/dependent.sql`).
const MARK: &str = include_str!("../../sql/incremental/marks/dependent.sql");

/// What a refresh changed in the aggregate.
#[derive(Debug, Clone, Copy)]
pub enum Changed<'a> {
    /// These days were rewritten (an incremental refresh).
    Days(&'a [NaiveDate]),
    /// Anything may have changed.
    Everything,
    /// It was replaced (build and swap): what read it was dropped.
    Replaced,
}

/// Brings the aggregates reading `aggregate` in line with what the refresh
/// just did: marks for the incremental ones, the concurrently ones built
/// again if the refresh replaced what they read, views created or replaced.
pub async fn after_refresh(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
    changed: Changed<'_>,
) -> Result<(), ModeError> {
    let mut sketches = None;
    for dependent in aggregate.dependents(config).filter(|d| d.kind == Kind::Rollup) {
        let Some(settings) = config.aggregate(dependent.name).filter(|s| s.enabled) else { continue };
        // A rollup the server cannot build gets no marks: they would pile up
        // in tally.invalidations with no refresh to take them.
        if dependent.needs_sketches {
            let on = match sketches {
                Some(on) => on,
                None => *sketches.insert(Features::detect(conn).await?.sketches),
            };
            if !on {
                continue;
            }
        }
        let replaced = matches!(changed, Changed::Replaced);
        if replaced && catalog::relation(conn, dependent.name).await?.is_none() {
            build_again(conn, dependent, config, settings.mode).await?;
        } else if settings.mode == Mode::Incremental {
            mark(conn, dependent, changed).await?;
        }
    }
    views::ensure_dependents(conn, aggregate, config).await
}

/// Refuses to refresh a rollup of rollups before what it reads exists (the
/// worker refreshes each on its own schedule; `tally refresh` brings the
/// inputs first).
pub async fn require_inputs(conn: &mut PgConnection, aggregate: &Aggregate) -> Result<(), ModeError> {
    for input in aggregate.depends_on {
        if catalog::relation(conn, input).await?.is_none() {
            return Err(ModeError::InputsMissing { name: aggregate.name, inputs: aggregate.depends_on });
        }
    }
    Ok(())
}

/// Drops what reads `aggregate` so that it can be replaced: the views, its
/// live view, and the rollups that are materialized views over it. The caller brings them
/// back with [`after_refresh`] before committing.
pub async fn drop_dependents(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<(), sqlx::Error> {
    views::drop_dependents(conn, aggregate, config).await?;
    super::live::drop(conn, aggregate).await?;
    for dependent in aggregate.dependents(config).filter(|d| d.kind == Kind::Rollup) {
        if catalog::relation(conn, dependent.name).await?.is_some_and(|r| r.relkind == "m") {
            execute(conn, format!("DROP MATERIALIZED VIEW {}", dependent.qualified_name())).await?;
        }
    }
    Ok(())
}

/// Marks `dependent`'s days: one row per run of consecutive days, or one
/// `all` row.
async fn mark(conn: &mut PgConnection, dependent: &Aggregate, changed: Changed<'_>) -> Result<(), sqlx::Error> {
    let (everything, firsts, lasts) = match changed {
        Changed::Everything | Changed::Replaced => (true, Vec::new(), Vec::new()),
        Changed::Days([]) => return Ok(()),
        Changed::Days(days) => {
            let runs = super::incremental::runs(days);
            (false, runs.iter().map(|r| r.0).collect(), runs.iter().map(|r| r.1).collect())
        }
    };
    sqlx::query(AssertSqlSafe(MARK))
        .bind(dependent.name)
        .bind(everything)
        .bind(firsts)
        .bind(lasts)
        .execute(conn)
        .await?;
    Ok(())
}

/// Builds `dependent` again, in its configured `mode`, after
/// [`drop_dependents`] dropped it in this transaction ([`after_refresh`]
/// skips a rollup the server cannot build). Its marks are covered by the build.
async fn build_again(
    conn: &mut PgConnection,
    dependent: &Aggregate,
    config: &Config,
    mode: Mode,
) -> Result<(), ModeError> {
    let features = Features::detect(conn).await?;
    let definition = dependent.definition(config, features);
    let fingerprint = build::fingerprint(conn, &definition, mode).await?;
    super::incremental::claim(conn, dependent, config).await?;
    build::create(conn, dependent, dependent.name, mode, &definition, &fingerprint).await?;
    tracing::info!(aggregate = dependent.name, "built again over the rollup it reads");
    Ok(())
}
