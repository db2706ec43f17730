//! `concurrently` mode: the aggregate is a materialized view with a unique
//! index on its key. The first refresh builds and populates it; later ones
//! run `REFRESH MATERIALIZED VIEW CONCURRENTLY`, which never blocks readers.
//!
//! The view's comment records an md5 of its definition. When the definition
//! changes (a new tally version, another `reporting_timezone`) or the
//! aggregate was in incremental mode, the next refresh builds the view beside
//! the old relation and swaps them (see `build.rs`).

use sqlx::{AssertSqlSafe, PgConnection};

use super::catalog;
use super::hierarchy::{self, Changed};
use super::{Aggregate, ModeError, RefreshKind, build};
use crate::config::{Config, Mode};
use crate::db::execute;

/// Brings the aggregate up to date inside the caller's transaction (which
/// holds the aggregate's advisory lock and the session timeouts), then makes
/// sure the views reading it exist with their current definitions. Returns
/// what it did and the row count afterwards.
pub async fn refresh(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<(RefreshKind, i64), ModeError> {
    hierarchy::require_inputs(conn, aggregate).await?;
    let features = super::Features::detect(conn).await?;
    let definition = aggregate.definition(config, features);
    let fingerprint = build::fingerprint(conn, &definition, Mode::Concurrently).await?;
    let kind = match catalog::relation(conn, aggregate.name).await? {
        None => {
            build::create(conn, aggregate, aggregate.name, Mode::Concurrently, &definition, &fingerprint).await?;
            RefreshKind::Built
        }
        Some(existing) if !build::is_tallys(&existing) && existing.relkind != "m" => {
            return Err(ModeError::WrongKind { name: aggregate.name, relkind: existing.relkind });
        }
        Some(existing) if existing.relkind != "m" || existing.comment.as_deref() != Some(fingerprint.as_str()) => {
            build::rebuild(conn, aggregate, config, &existing, Mode::Concurrently, &definition, &fingerprint).await?;
            RefreshKind::Rebuilt
        }
        Some(existing) if !existing.populated => {
            execute(conn, format!("REFRESH MATERIALIZED VIEW {}", aggregate.qualified_name())).await?;
            RefreshKind::Populated
        }
        Some(_) => {
            execute(conn, format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {}", aggregate.qualified_name())).await?;
            RefreshKind::Refreshed
        }
    };
    let changed = if kind == RefreshKind::Rebuilt { Changed::Replaced } else { Changed::Everything };
    hierarchy::after_refresh(conn, aggregate, config, changed).await?;
    Ok((kind, count_rows(conn, aggregate).await?))
}

/// Rows in the aggregate now.
pub async fn count_rows(conn: &mut PgConnection, aggregate: &Aggregate) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}", aggregate.qualified_name())))
        .fetch_one(conn)
        .await
}
