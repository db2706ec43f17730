//! Live reads (SPEC §4.3): for each daily aggregate in incremental mode,
//! `reporting.<name>_live` is a view returning what a refresh at this
//! instant would write: the stored rows of the clean days, and the
//! definition recomputed for the days waiting in `tally.invalidations`
//! (`sql/incremental/live.sql`, with the same day rules as the claim:
//! `sql/incremental/dirty.sql`).
//!
//! The recomputation is a function (`tally.<name>_live_rows`,
//! `sql/incremental/live_functions.sql`) that turns the dirty days into
//! literal time ranges and plans the definition for them, so its cost and
//! its plan follow the dirty days, not the size of the table. Days dirtied
//! only by small statements (keyed marks, [`super::LiveKey`]) are recomputed
//! for the key values those statements wrote (e.g. one campaign), and the
//! view keeps the day's other stored rows. A view that
//! computed the days inline was planned for an unknown range, with an
//! estimate that grows with the table: at 10M events it took 181 ms a read
//! with no dirty day (BENCHMARKS.md, "Live reads").
//!
//! The view and its functions are created or replaced in the transaction of
//! the aggregate's incremental refresh (when their text changed), and
//! dropped with the table when the aggregate is replaced (a mode switch to
//! `concurrently` drops them for good). The functions run with their
//! owner's rights, so `tally_reader` reads the view without any right on
//! `marketing`. Rollups of rollups (weekly, monthly) have none: their dirty
//! periods come from the daily rollup's refreshes.

use sqlx::PgConnection;

use super::{Aggregate, Features, Period, catalog, incremental};
use crate::config::Config;
use crate::db::template::render;
use crate::db::{execute, quote_ident, quote_literal};

const LIVE: &str = include_str!("../../sql/incremental/live.sql");
const FUNCTIONS: &str = include_str!("../../sql/incremental/live_functions.sql");

/// Where the scope goes in the definition the rows function plans.
const SCOPE_MARKER: &str = "/* tally live scope */ true";

/// `reporting.<name>_live`, quoted.
pub fn qualified_name(aggregate: &Aggregate) -> String {
    format!("reporting.{}", quote_ident(&format!("{}_live", aggregate.name)))
}

/// `tally.<name>_live_days` and `tally.<name>_live_rows`, quoted.
fn function_names(aggregate: &Aggregate) -> (String, String) {
    let name = |suffix: &str| format!("tally.{}", quote_ident(&format!("{}_live_{suffix}", aggregate.name)));
    (name("days"), name("rows"))
}

/// Whether the aggregate gets a live view in incremental mode.
pub fn has_live_view(aggregate: &Aggregate) -> bool {
    aggregate.period == Period::Day && !aggregate.dirtied_by.is_empty()
}

/// The functions and the view, as one script. `hll_schema`: the schema of
/// the visitor sketch functions, when the server has them.
fn script(aggregate: &Aggregate, config: &Config, features: Features, hll_schema: Option<&str>) -> String {
    let tz = aggregate.scope_zone(&config.reporting_timezone.sql_literal());
    let column = aggregate.scope_column;
    // One run of consecutive dirty days, for format(): %1$s its first day,
    // %2$s its last, %3$s the day after (dates as YYYY-MM-DD).
    let range = match aggregate.scope_is_date {
        true => format!("({column} BETWEEN '%1$s'::date AND '%2$s'::date)"),
        false => {
            let tz = tz.replace('%', "%%");
            format!(
                "({column} >= ('%1$s'::timestamp AT TIME ZONE {tz}) AND {column} < ('%3$s'::timestamp AT TIME ZONE {tz}))"
            )
        }
    };
    // A declared SELECT may call functions of `public` (its tables are
    // qualified when it is read); tally's own name every schema.
    let public = if aggregate.declared.is_some() { "public, " } else { "" };
    let search_path = match hll_schema {
        Some(schema) => format!("pg_catalog, {public}{schema}, pg_temp"),
        None => format!("pg_catalog, {public}pg_temp"),
    };
    let (days, rows) = function_names(aggregate);
    let table = aggregate.qualified_name();
    let period = quote_ident(aggregate.period.column());
    let (key, keyed_rows) = match aggregate.live_key.zip(aggregate.live_key_expression()) {
        Some((key, expression)) => (
            quote_literal(&expression),
            format!("stored.{period} = ANY (live.keyed) AND stored.{} = ANY (live.keys)", quote_ident(key.column)),
        ),
        None => ("'false'".to_string(), "false".to_string()),
    };
    let functions = render(
        FUNCTIONS,
        &[
            ("days", &days),
            ("rows", &rows),
            ("table", &table),
            ("aggregate", &quote_literal(aggregate.name)),
            ("split", &incremental::split(aggregate, config, "live_marks")),
            ("key", &key),
            ("search_path", &search_path),
            ("work_mem", &quote_literal(super::incremental::WORK_MEM)),
            ("range", &quote_literal(&range)),
            ("definition", &quote_literal(&aggregate.scoped_definition(config, features, SCOPE_MARKER))),
            ("marker", &quote_literal(SCOPE_MARKER)),
        ],
    );
    let view = render(
        LIVE,
        &[("table", &table), ("period", &period), ("days", &days), ("rows", &rows), ("keyed_rows", &keyed_rows)],
    );
    format!("{functions}\nCREATE VIEW {} AS {view}", qualified_name(aggregate))
}

/// Creates or replaces the live view and its functions when their text changed.
pub async fn ensure(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
    features: Features,
) -> Result<(), sqlx::Error> {
    if !has_live_view(aggregate) {
        return Ok(());
    }
    let hll_schema: Option<String> = match features.sketches {
        true => {
            sqlx::query_scalar(
                "SELECT quote_ident(n.nspname) FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
                 WHERE p.proname = 'hll_add_agg' AND pg_function_is_visible(p.oid) LIMIT 1",
            )
            .fetch_optional(&mut *conn)
            .await?
        }
        false => None,
    };
    let script = script(aggregate, config, features, hll_schema.as_deref());
    let fingerprint = catalog::fingerprint(conn, &script).await?;
    let name = format!("{}_live", aggregate.name);
    if catalog::relation(conn, &name).await?.is_some_and(|v| v.comment.as_deref() == Some(fingerprint.as_str())) {
        return Ok(());
    }
    drop(conn, aggregate).await?;
    execute(conn, script).await?;
    execute(conn, format!("COMMENT ON VIEW {} IS '{fingerprint}'", qualified_name(aggregate))).await?;
    tracing::info!(view = name, "created the live view");
    Ok(())
}

/// Drops the live view and its functions (before its table is replaced),
/// whatever their signatures: a function over the table's row type would
/// keep the table from being dropped.
pub async fn drop(conn: &mut PgConnection, aggregate: &Aggregate) -> Result<(), sqlx::Error> {
    execute(conn, format!("DROP VIEW IF EXISTS {}", qualified_name(aggregate))).await?;
    let functions: Vec<String> = sqlx::query_scalar(
        "SELECT p.oid::regprocedure::text FROM pg_proc AS p
         WHERE p.pronamespace = 'tally'::regnamespace AND p.proname IN ($1 || '_live_days', $1 || '_live_rows')",
    )
    .bind(aggregate.name)
    .fetch_all(&mut *conn)
    .await?;
    for function in functions {
        execute(conn, format!("DROP FUNCTION {function}")).await?;
    }
    Ok(())
}
