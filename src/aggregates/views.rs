//! Plain views over the rollups (`campaign_performance`): never refreshed
//! themselves, always as fresh as what they read. They are created, or
//! replaced when their definition changed, in the same transaction as a
//! refresh of an aggregate they read, once everything they read exists.

use sqlx::{AssertSqlSafe, PgConnection};

use super::catalog;
use super::{Aggregate, Kind};
use super::{ModeError, RefreshKind};
use crate::config::Config;
use crate::db::execute;

/// What [`ensure`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewState {
    /// An aggregate it reads does not exist yet.
    InputsMissing,
    /// It existed with the current definition.
    Current,
    /// It was created or replaced.
    Created,
}

/// `tally refresh` of a view: make sure it exists and is current (it holds
/// no data of its own), and count its rows.
pub async fn refresh(
    conn: &mut PgConnection,
    view: &Aggregate,
    config: &Config,
) -> Result<(RefreshKind, i64), ModeError> {
    let kind = match ensure(conn, view, config).await? {
        ViewState::InputsMissing => return Err(ModeError::InputsMissing { name: view.name, inputs: view.depends_on }),
        ViewState::Current => RefreshKind::Refreshed,
        ViewState::Created => RefreshKind::Built,
    };
    let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}", view.qualified_name())))
        .fetch_one(&mut *conn)
        .await?;
    Ok((kind, rows))
}

/// Creates or replaces each view reading `aggregate` whose inputs all exist.
pub async fn ensure_dependents(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<(), ModeError> {
    for view in aggregate.dependents(config).filter(|d| d.kind == Kind::View) {
        ensure(conn, view, config).await?;
    }
    Ok(())
}

/// Drops the views reading `aggregate`, so it can be replaced; the caller
/// recreates them (with [`ensure_dependents`]) before committing.
pub async fn drop_dependents(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<(), sqlx::Error> {
    for view in aggregate.dependents(config).filter(|d| d.kind == Kind::View) {
        execute(conn, format!("DROP VIEW IF EXISTS {}", view.qualified_name())).await?;
    }
    Ok(())
}

/// Creates or replaces the view unless it is current or an aggregate it
/// reads does not exist yet.
pub async fn ensure(conn: &mut PgConnection, view: &Aggregate, config: &Config) -> Result<ViewState, ModeError> {
    for input in view.depends_on {
        if catalog::relation(conn, input).await?.is_none() {
            return Ok(ViewState::InputsMissing);
        }
    }
    // A view reads its rollups' columns by name: no server feature changes it.
    let definition = view.definition(config, super::Features::default());
    let fingerprint = catalog::fingerprint(conn, &definition).await?;
    match catalog::relation(conn, view.name).await? {
        Some(existing) if existing.relkind != "v" => {
            return Err(ModeError::WrongKind { name: view.name, relkind: existing.relkind });
        }
        Some(existing) if existing.comment.as_deref() == Some(fingerprint.as_str()) => return Ok(ViewState::Current),
        _ => {}
    }
    // DROP + CREATE rather than CREATE OR REPLACE, which refuses changed columns.
    execute(conn, format!("DROP VIEW IF EXISTS {}", view.qualified_name())).await?;
    execute(conn, format!("CREATE VIEW {} AS {definition}", view.qualified_name())).await?;
    execute(conn, format!("COMMENT ON VIEW {} IS '{fingerprint}'", view.qualified_name())).await?;
    tracing::info!(view = view.name, "created view");
    Ok(ViewState::Created)
}
