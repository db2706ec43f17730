//! `concurrently` mode: the aggregate is a materialized view with a unique
//! index on its key. The first refresh builds and populates it; later ones
//! run `REFRESH MATERIALIZED VIEW CONCURRENTLY`, which never blocks readers.
//!
//! The view's comment records an md5 of its definition. When the definition
//! changes (a new tally version, another `reporting_timezone`), the next
//! refresh builds the new view beside the old one and swaps them by rename
//! in the same transaction, so readers never see a missing or empty view.

use sqlx::{AssertSqlSafe, PgConnection};

use super::Aggregate;
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
        "reporting.{name} exists but is not a materialized view (relkind `{relkind}`); \
         drop or rename it so tally can create the aggregate"
    )]
    WrongKind { name: &'static str, relkind: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Brings the aggregate up to date inside the caller's transaction (which
/// holds the aggregate's advisory lock and the session timeouts), and
/// returns what it did and the row count afterwards.
pub async fn refresh(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    definition: &str,
) -> Result<(RefreshKind, i64), ModeError> {
    let fingerprint: String =
        sqlx::query_scalar("SELECT 'tally definition ' || md5($1)").bind(definition).fetch_one(&mut *conn).await?;
    let existing: Option<(String, bool, Option<String>)> = sqlx::query_as(
        "SELECT c.relkind::text, c.relispopulated, obj_description(c.oid, 'pg_class')
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'reporting' AND c.relname = $1",
    )
    .bind(aggregate.name)
    .fetch_optional(&mut *conn)
    .await?;

    let kind = match existing {
        None => {
            create(conn, aggregate, aggregate.name, definition, &fingerprint).await?;
            RefreshKind::Built
        }
        Some((relkind, _, _)) if relkind != "m" => {
            return Err(ModeError::WrongKind { name: aggregate.name, relkind });
        }
        Some((_, _, comment)) if comment.as_deref() != Some(fingerprint.as_str()) => {
            rebuild(conn, aggregate, definition, &fingerprint).await?;
            RefreshKind::Rebuilt
        }
        Some((_, false, _)) => {
            execute(conn, format!("REFRESH MATERIALIZED VIEW {}", aggregate.qualified_name())).await?;
            RefreshKind::Populated
        }
        Some((_, true, _)) => {
            execute(conn, format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {}", aggregate.qualified_name())).await?;
            RefreshKind::Refreshed
        }
    };
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
/// The old view serves readers until the swap; the swap holds its lock only
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

/// Runs one DDL statement built from registry names and validated settings.
async fn execute(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(|_| ())
}
