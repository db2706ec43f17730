//! Reading the indexes the audit judges from the system catalogs: keys,
//! operator classes, predicate, validity, what depends on each, and scans
//! and sizes summed over a partitioned index's partitions.

use sqlx::PgPool;

use super::AuditIndex;

/// The catalog read (`sql/doctor/audit_indexes.sql`).
const AUDIT_INDEXES: &str = include_str!("../../../sql/doctor/audit_indexes.sql");

/// The indexes of user schemas, and those schemas.
pub async fn load(pool: &PgPool) -> Result<(Vec<AuditIndex>, Vec<String>), sqlx::Error> {
    let indexes: Vec<AuditIndex> = sqlx::query_as(AUDIT_INDEXES).fetch_all(pool).await?;
    let mut schemas: Vec<String> =
        indexes.iter().filter_map(|i| i.table.split_once('.').map(|(s, _)| s.to_string())).collect();
    schemas.sort();
    schemas.dedup();
    Ok((indexes, schemas))
}
