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
    // Between the first and the last dirty day (all time after a TRUNCATE
    // mark), then exactly the dirty days.
    let (lo, hi, first, after_last, day) = match aggregate.scope_is_date {
        true => (
            "'-infinity'::date".to_string(),
            "'infinity'::date".to_string(),
            "(SELECT min(day) FROM live_dirty)".to_string(),
            "((SELECT max(day) FROM live_dirty) + 1)".to_string(),
            column.to_string(),
        ),
        false => (
            "'-infinity'::timestamptz".to_string(),
            "'infinity'::timestamptz".to_string(),
            format!("((SELECT min(day) FROM live_dirty)::timestamp AT TIME ZONE {tz})"),
            format!("(((SELECT max(day) FROM live_dirty) + 1)::timestamp AT TIME ZONE {tz})"),
            format!("({column} AT TIME ZONE {tz})::date"),
        ),
    };
    let days = format!(
        "({column} >= (SELECT CASE WHEN yes THEN {lo} ELSE {first} END FROM live_all) \
         AND {column} < (SELECT CASE WHEN yes THEN {hi} ELSE {after_last} END FROM live_all) \
         AND ((SELECT yes FROM live_all) OR {day} IN (SELECT day FROM live_dirty)))"
    );
    render(
        LIVE,
        &[
            ("aggregate", &quote_literal(aggregate.name)),
            ("table", &aggregate.qualified_name()),
            ("dirty", &dirty),
            ("days", &aggregate.scoped_definition(config, features, &days)),
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
