//! What the doctor needs to know about the tables a plan reads: their size,
//! their indexes, and how they are partitioned. Loaded from the system
//! catalogs; built by hand in unit tests.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::detect::aggregates::DayZones;

/// The tables a plan reads, by `schema.name`, and the aggregates in `reporting`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, Table>,
    /// Relations in the `reporting` schema.
    pub aggregates: Vec<String>,
    /// Where days begin for the aggregates and for the session: whether a
    /// query's days are the aggregates' days.
    pub days: DayZones,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    pub schema: String,
    pub name: String,
    /// Estimated live rows (`reltuples`, or `n_live_tup` before the first ANALYZE).
    pub rows: f64,
    /// `schema.name` of the partitioned table this is a partition of.
    pub root: Option<String>,
    /// Partition key columns, when this table is partitioned (`(expression)`
    /// for a key that is an expression).
    pub partition_key: Vec<String>,
    /// `schema.name` of every leaf partition, when this table is partitioned.
    pub leaves: Vec<String>,
    /// Partitions that are partitioned themselves (multi-level), parents first.
    pub intermediates: Vec<String>,
    /// The parent (`schema.name`) of every partition below the first level.
    pub parents: BTreeMap<String, String>,
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    /// `schema.name`, quoted where needed.
    pub name: String,
    /// `btree`, `gin`, ...
    pub method: String,
    /// Key columns or expressions, as `pg_get_indexdef` prints them.
    pub columns: Vec<String>,
    /// The operator class of each key column where it is not the default
    /// (`jsonb_path_ops`).
    pub opclasses: Vec<Option<String>>,
    /// The `WHERE` of a partial index.
    pub predicate: Option<String>,
    pub valid: bool,
    pub unique: bool,
}

impl Table {
    /// `schema.name` as findings print it (unquoted).
    pub fn display_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// `schema.name` quoted for SQL.
    pub fn sql_name(&self) -> String {
        format!(
            "{}.{}",
            crate::db::sql::quote_ident_if_needed(&self.schema),
            crate::db::sql::quote_ident_if_needed(&self.name)
        )
    }

    pub fn is_partitioned(&self) -> bool {
        !self.partition_key.is_empty()
    }
}

impl Catalog {
    pub fn table(&self, key: &str) -> Option<&Table> {
        self.tables.get(key)
    }

    /// The table an index for `key` belongs on: the partitioned root for a partition.
    pub fn target(&self, key: &str) -> Option<&Table> {
        let table = self.tables.get(key)?;
        match &table.root {
            Some(root) => self.tables.get(root).or(Some(table)),
            None => Some(table),
        }
    }

    /// Loads `relations` (`schema.name`), their partitioned roots, the
    /// names in `reporting` and the session's time zone; the aggregates'
    /// days are in `reporting_timezone`.
    pub async fn load(
        conn: &mut PgConnection,
        relations: &[String],
        reporting_timezone: chrono_tz::Tz,
    ) -> Result<Catalog, sqlx::Error> {
        let mut catalog = Catalog::default();
        let mut pending: Vec<String> = relations.to_vec();
        while let Some(key) = pending.pop() {
            if catalog.tables.contains_key(&key) {
                continue;
            }
            let Some(table) = load_table(conn, &key).await? else { continue };
            if let Some(root) = &table.root {
                pending.push(root.clone());
            }
            catalog.tables.insert(key, table);
        }
        catalog.aggregates = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'reporting' AND c.relkind IN ('r', 'm', 'v', 'p') ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await?;
        let session: String = sqlx::query_scalar("SELECT current_setting('TimeZone')").fetch_one(&mut *conn).await?;
        catalog.days = DayZones { reporting: reporting_timezone, session: session.parse().ok() };
        Ok(catalog)
    }
}

async fn load_table(conn: &mut PgConnection, key: &str) -> Result<Option<Table>, sqlx::Error> {
    let Some((schema, name)) = key.split_once('.') else { return Ok(None) };
    let row: Option<(i64, f64, Option<String>)> = sqlx::query_as(
        "SELECT c.oid::int8, greatest(c.reltuples, coalesce(s.n_live_tup, 0), 0)::float8,
                CASE WHEN r.oid <> c.oid THEN rn.nspname || '.' || r.relname END
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
         LEFT JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
         LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2",
    )
    .bind(schema)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((oid, rows, root)) = row else { return Ok(None) };
    let partition_key: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(a.attname::text, '(expression)')
         FROM pg_partitioned_table p
         CROSS JOIN unnest(p.partattrs::int2[]) WITH ORDINALITY AS k(attnum, ord)
         LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.attnum AND k.attnum <> 0
         WHERE p.partrelid = $1::int8::oid
         ORDER BY k.ord",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await?;
    let tree: Vec<(String, String, bool, i32)> = if partition_key.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT n.nspname || '.' || c.relname, pn.nspname || '.' || pc.relname, t.isleaf, t.level
             FROM pg_partition_tree($1::int8::oid) t
             JOIN pg_class c ON c.oid = t.relid JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_class pc ON pc.oid = t.parentrelid JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE t.level > 0 ORDER BY t.level, c.relname",
        )
        .bind(oid)
        .fetch_all(&mut *conn)
        .await?
    };
    let leaves: Vec<String> = tree.iter().filter(|(_, _, leaf, _)| *leaf).map(|(r, ..)| r.clone()).collect();
    let intermediates: Vec<String> = tree.iter().filter(|(_, _, leaf, _)| !*leaf).map(|(r, ..)| r.clone()).collect();
    let parents: BTreeMap<String, String> =
        tree.iter().filter(|(.., level)| *level > 1).map(|(r, p, ..)| (r.clone(), p.clone())).collect();
    type Row = (String, String, Vec<String>, Vec<String>, Option<String>, bool, bool);
    let indexes = sqlx::query_as::<_, Row>(
        "SELECT format('%I.%I', n.nspname, ic.relname), am.amname::text,
                array(SELECT pg_get_indexdef(i.indexrelid, k, true)
                      FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k),
                array(SELECT CASE WHEN o.opcdefault THEN '' ELSE o.opcname::text END
                      FROM generate_series(1, i.indnkeyatts) AS k
                      JOIN pg_opclass o ON o.oid = i.indclass[k - 1] ORDER BY k),
                pg_get_expr(i.indpred, i.indrelid, true), i.indisvalid, i.indisunique
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_namespace n ON n.oid = ic.relnamespace
         JOIN pg_am am ON am.oid = ic.relam
         WHERE i.indrelid = $1::int8::oid
         ORDER BY ic.relname",
    )
    .bind(oid)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|(name, method, columns, opclasses, predicate, valid, unique)| Index {
        name,
        method,
        columns,
        opclasses: opclasses.into_iter().map(|o| Some(o).filter(|o| !o.is_empty())).collect(),
        predicate,
        valid,
        unique,
    })
    .collect();
    Ok(Some(Table {
        schema: schema.to_string(),
        name: name.to_string(),
        rows,
        root,
        partition_key,
        leaves,
        intermediates,
        parents,
        indexes,
    }))
}
