//! Building a rollup from scratch, as a materialized view (`concurrently`
//! mode) or a plain table (`incremental` mode), and replacing an existing one
//! (another definition, another mode) without readers ever seeing it missing
//! or empty: the new relation is built under a temporary name, then swapped
//! in by rename inside the caller's transaction.

use sqlx::PgConnection;

use super::catalog::{self, Relation};
use super::{Aggregate, hierarchy};
use crate::config::Mode;
use crate::db::execute;
use crate::db::quote_ident;

/// The comment that marks a relation tally built from `definition` in `mode`.
/// Its prefix tells tally's relations from anyone else's.
pub async fn fingerprint(conn: &mut PgConnection, definition: &str, mode: Mode) -> Result<String, sqlx::Error> {
    let text = match mode {
        Mode::Concurrently => definition.to_string(),
        Mode::Incremental => format!("{definition}\n-- incremental"),
    };
    catalog::fingerprint(conn, &text).await
}

/// Whether tally built `relation` (its comment carries a fingerprint).
pub fn is_tallys(relation: &Relation) -> bool {
    relation.comment.as_deref().is_some_and(|c| c.starts_with(catalog::FINGERPRINT_PREFIX))
}

/// Creates and populates `reporting.<relation>` with the aggregate's unique
/// key (`<relation>_key`) and its fingerprint.
pub async fn create(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    relation: &str,
    mode: Mode,
    definition: &str,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    let target = format!("reporting.{}", quote_ident(relation));
    let key_name = quote_ident(&format!("{relation}_key"));
    let key = aggregate.key.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ");
    match mode {
        Mode::Concurrently => {
            execute(conn, format!("CREATE MATERIALIZED VIEW {target} AS {definition} WITH DATA")).await?;
            execute(conn, format!("CREATE UNIQUE INDEX {key_name} ON {target} ({key})")).await?;
            execute(conn, format!("COMMENT ON MATERIALIZED VIEW {target} IS '{fingerprint}'")).await?;
        }
        Mode::Incremental => {
            execute(conn, format!("CREATE TABLE {target} AS {definition}")).await?;
            execute(conn, format!("ALTER TABLE {target} ADD CONSTRAINT {key_name} PRIMARY KEY ({key})")).await?;
            execute(conn, format!("COMMENT ON TABLE {target} IS '{fingerprint}'")).await?;
        }
    }
    Ok(())
}

/// Replaces the aggregate's current relation (`existing`, of either kind)
/// by a new one built in `mode`. Views and materialized rollups reading it
/// are dropped just before the swap; the caller brings them back in the same
/// transaction ([`hierarchy::after_refresh`]).
pub async fn rebuild(
    conn: &mut PgConnection,
    aggregate: &Aggregate,
    config: &crate::config::Config,
    existing: &Relation,
    mode: Mode,
    definition: &str,
    fingerprint: &str,
) -> Result<(), sqlx::Error> {
    let staging = format!("{}__rebuild", aggregate.name);
    if let Some(leftover) = catalog::relation(conn, &staging).await? {
        execute(conn, format!("{} reporting.{}", drop_statement(&leftover.relkind), quote_ident(&staging))).await?;
    }
    create(conn, aggregate, &staging, mode, definition, fingerprint).await?;
    hierarchy::drop_dependents(conn, aggregate, config).await?;
    execute(conn, format!("{} {}", drop_statement(&existing.relkind), aggregate.qualified_name())).await?;
    let (kind, rename_key) = match mode {
        Mode::Concurrently => ("MATERIALIZED VIEW", "INDEX"),
        Mode::Incremental => ("TABLE", "CONSTRAINT"),
    };
    execute(
        conn,
        format!("ALTER {kind} reporting.{} RENAME TO {}", quote_ident(&staging), quote_ident(aggregate.name)),
    )
    .await?;
    let (old_key, new_key) = (quote_ident(&format!("{staging}_key")), quote_ident(&format!("{}_key", aggregate.name)));
    let rename = match mode {
        Mode::Concurrently => format!("ALTER {rename_key} reporting.{old_key} RENAME TO {new_key}"),
        Mode::Incremental => {
            format!("ALTER TABLE {} RENAME {rename_key} {old_key} TO {new_key}", aggregate.qualified_name())
        }
    };
    execute(conn, rename).await?;
    tracing::info!(aggregate = aggregate.name, mode = mode.as_str(), "rebuilt and swapped in");
    Ok(())
}

fn drop_statement(relkind: &str) -> &'static str {
    match relkind {
        "m" => "DROP MATERIALIZED VIEW",
        "v" => "DROP VIEW",
        _ => "DROP TABLE",
    }
}
