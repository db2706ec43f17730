//! What exists in `reporting`, and the definition fingerprints tally keeps
//! in each relation's comment to know when a definition changed.

use sqlx::PgConnection;

/// A relation in `reporting` as the catalog describes it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Relation {
    /// `m` materialized view, `v` view, `r` table, ...
    pub relkind: String,
    pub populated: bool,
    pub comment: Option<String>,
}

/// The relation `reporting.<name>`, if it exists.
pub async fn relation(conn: &mut PgConnection, name: &str) -> Result<Option<Relation>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.relkind::text AS relkind, c.relispopulated AS populated, obj_description(c.oid, 'pg_class') AS comment
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'reporting' AND c.relname = $1",
    )
    .bind(name)
    .fetch_optional(conn)
    .await
}

/// How every fingerprint comment starts.
pub const FINGERPRINT_PREFIX: &str = "tally definition ";

/// The comment that marks a relation built from `definition`.
pub async fn fingerprint(conn: &mut PgConnection, definition: &str) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT $1 || md5($2)").bind(FINGERPRINT_PREFIX).bind(definition).fetch_one(conn).await
}
