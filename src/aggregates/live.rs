//! Live reads (SPEC §4.3): for each daily aggregate in incremental mode,
//! `reporting.<name>_live` is a view returning what a refresh at this
//! instant would write: the stored rows of the clean days, and the
//! definition recomputed for the days waiting in `tally.invalidations`
//! (`sql/incremental/live.sql`, with the same day rules as the claim:
//! `sql/incremental/dirty.sql`). Its cost grows with the dirty days only.
//!
//! It is created or replaced in the transaction of the aggregate's
//! incremental refresh (when its definition changed), and dropped with the
//! table when the aggregate is replaced (a mode switch to `concurrently`
//! drops it for good). It runs with its owner's rights, so `tally_reader`
//! reads it without any right on `marketing`. Rollups of rollups (weekly,
//! monthly) have none: their dirty periods come from the daily rollup's
//! refreshes.

use sqlx::PgConnection;

use super::{Aggregate, Features, Period, catalog};
use crate::config::Config;
use crate::db::template::render;
use crate::db::{execute, quote_ident, quote_literal};

const LIVE: &str = include_str!("../../sql/incremental/live.sql");

/// `reporting.<name>_live`, quoted.
pub fn qualified_name(aggregate: &Aggregate) -> String {
    format!("reporting.{}", quote_ident(&format!("{}_live", aggregate.name)))
}

/// Whether the aggregate gets a live view in incremental mode.
pub fn has_live_view(aggregate: &Aggregate) -> bool {
    aggregate.period == Period::Day && !aggregate.dirtied_by.is_empty()
}

/// The view's defining SELECT.
pub fn definition(aggregate: &Aggregate, config: &Config, features: Features) -> String {
    let tz = config.reporting_timezone.sql_literal();
    let dirty = render(super::incremental::DIRTY, &[("marks", "live_marks"), ("tz", &tz)]);
    let column = aggregate.scope_column;
    let days = match aggregate.scope_is_date {
        true => format!("{column} IN (SELECT day FROM live_dirty)"),
        false => format!(
            "EXISTS (SELECT 1 FROM live_dirty AS d WHERE {column} >= (d.day::timestamp AT TIME ZONE {tz}) \
             AND {column} < ((d.day + 1)::timestamp AT TIME ZONE {tz}))"
        ),
    };
    let scope = format!("((SELECT yes FROM live_all) OR {days})");
    let recomputed = aggregate.scoped_definition(config, features, &scope);
    render(
        LIVE,
        &[
            ("aggregate", &quote_literal(aggregate.name)),
            ("table", &aggregate.qualified_name()),
            ("dirty", &dirty),
            ("definition", &recomputed),
        ],
    )
}

/// Creates or replaces the live view when its definition changed.
pub async fn ensure(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
    features: Features,
) -> Result<(), sqlx::Error> {
    if !has_live_view(aggregate) {
        return Ok(());
    }
    let definition = definition(aggregate, config, features);
    let fingerprint = catalog::fingerprint(conn, &definition).await?;
    let name = format!("{}_live", aggregate.name);
    if catalog::relation(conn, &name).await?.is_some_and(|v| v.comment.as_deref() == Some(fingerprint.as_str())) {
        return Ok(());
    }
    let view = qualified_name(aggregate);
    execute(conn, format!("DROP VIEW IF EXISTS {view}")).await?;
    execute(conn, format!("CREATE VIEW {view} AS {definition}")).await?;
    execute(conn, format!("COMMENT ON VIEW {view} IS '{fingerprint}'")).await?;
    tracing::info!(view = name, "created the live view");
    Ok(())
}

/// Drops the live view (before its table is replaced).
pub async fn drop(conn: &mut PgConnection, aggregate: &Aggregate) -> Result<(), sqlx::Error> {
    execute(conn, format!("DROP VIEW IF EXISTS {}", qualified_name(aggregate))).await
}
