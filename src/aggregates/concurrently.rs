//! `concurrently` mode: the aggregate is a materialized view with a unique
//! index on its key. The first refresh builds and populates it; later ones
//! run `REFRESH MATERIALIZED VIEW CONCURRENTLY`, which never blocks readers.
//!
//! The view's comment records an md5 of its definition. When the definition
//! changes (a new tally version, another `reporting_timezone`), the next
//! refresh builds the new view beside the old one and swaps them by rename
//! in the same transaction, so readers never see a missing or empty view.

use sqlx::{AssertSqlSafe, PgConnection};

use super::catalog::{self, execute};
use super::{Aggregate, views};
use crate::config::Config;
use crate::db::quote_ident;

/// What a refresh had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshKind {
    /// The view did not exist; it was created and populated.
    Built,
    /// The definition changed; a new view replaced the old one.
    Rebuilt,
    /// The view existed unpopulated and was populated.
    Populated,
    /// `REFRESH MATERIALIZED VIEW CONCURRENTLY`.
    Refreshed,
}

impl RefreshKind {
    /// The word used in logs and command output.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshKind::Built => "built",
            RefreshKind::Rebuilt => "rebuilt",
            RefreshKind::Populated => "populated",
            RefreshKind::Refreshed => "refreshed",
        }
    }
}

/// Errors of this mode that are not plain database errors.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error(
        "reporting.{name} exists but is not what tally builds (relkind `{relkind}`); \
         drop or rename it so tally can create the aggregate"
    )]
    WrongKind { name: &'static str, relkind: String },
    #[error("reporting.{name} reads {}, which must be refreshed first", inputs.join(" and "))]
    InputsMissing { name: &'static str, inputs: &'static [&'static str] },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Brings the aggregate up to date inside the caller's transaction (which
/// holds the aggregate's advisory lock and the session timeouts), then makes
/// sure the views reading it exist with their current definitions. Returns
/// what it did and the row count afterwards.
pub async fn refresh(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &Config,
) -> Result<(RefreshKind, i64), ModeError> {
    let definition = aggregate.definition(config);
    let fingerprint = catalog::fingerprint(conn, &definition).await?;
    let kind = match catalog::relation(conn, aggregate.name).await? {
        None => {
            create(conn, aggregate, aggregate.name, &definition, &fingerprint).await?;
            RefreshKind::Built
        }
        Some(existing) if existing.relkind != "m" => {
            return Err(ModeError::WrongKind { name: aggregate.name, relkind: existing.relkind });
        }
        Some(existing) if existing.comment.as_deref() != Some(fingerprint.as_str()) => {
            rebuild(conn, aggregate, &definition, &fingerprint).await?;
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
    views::ensure_dependents(conn, aggregate, config).await?;
    let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {}", aggregate.qualified_name())))
        .fetch_one(&mut *conn)
        .await?;
    Ok((kind, rows))
}

/// Creates and populates the view `reporting.<relation>` with the aggregate's
/// unique key index and its definition fingerprint.
async fn create(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    relation: &str,
    definition: &str,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    let view = format!("reporting.{}", quote_ident(relation));
    let key = aggregate.key.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    execute(conn, format!("CREATE MATERIALIZED VIEW {view} AS {definition} WITH DATA")).await?;
    execute(conn, format!("CREATE UNIQUE INDEX {} ON {view} ({key})", quote_ident(&format!("{relation}_key")))).await?;
    execute(conn, format!("COMMENT ON MATERIALIZED VIEW {view} IS '{fingerprint}'")).await?;
    Ok(())
}

/// Builds the new definition under a temporary name, then swaps it in.
/// The old view serves readers until the swap; the swap (and the views that
/// read the aggregate, dropped and recreated around it) holds its locks only
/// until the surrounding transaction commits.
async fn rebuild(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    definition: &str,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    let staging = format!("{}__rebuild", aggregate.name);
    execute(conn, format!("DROP MATERIALIZED VIEW IF EXISTS reporting.{}", quote_ident(&staging))).await?;
    create(conn, aggregate, &staging, definition, fingerprint).await?;
    views::drop_dependents(conn, aggregate).await?;
    execute(conn, format!("DROP MATERIALIZED VIEW {}", aggregate.qualified_name())).await?;
    execute(
        conn,
        format!(
            "ALTER MATERIALIZED VIEW reporting.{} RENAME TO {}",
            quote_ident(&staging),
            quote_ident(aggregate.name)
        ),
    )
    .await?;
    execute(
        conn,
        format!(
            "ALTER INDEX reporting.{} RENAME TO {}",
            quote_ident(&format!("{staging}_key")),
            quote_ident(&format!("{}_key", aggregate.name))
        ),
    )
    .await?;
    tracing::info!(aggregate = aggregate.name, "definition changed; rebuilt and swapped in");
    Ok(())
}
