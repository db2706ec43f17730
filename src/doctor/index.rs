//! The index that serves a scan's conditions, following the brief's
//! indexing table: B-tree for equality then one range (or the ORDER BY
//! columns), GIN `jsonb_path_ops` for `@>`, GIN on the expression for
//! full-text search, a partial index for a constant predicate. Written as
//! `CREATE INDEX CONCURRENTLY` (or, on a partitioned table, the
//! per-partition recipe PostgreSQL requires).

use sha2::Digest;

use super::catalog::{Index, Table};
use super::predicate::Term;
use crate::db::sql::quote_ident_if_needed;

/// One index to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Wanted {
    /// `gin` or `btree`.
    pub method: &'static str,
    /// Key columns or expressions as SQL (a GIN key with its operator class).
    pub keys: Vec<String>,
    /// Bare key names, for the index name and the comparison with existing indexes.
    pub key_names: Vec<String>,
    pub predicate: Option<String>,
    /// INCLUDE columns (quoted where needed): stored, not searched, so an
    /// index-only scan can answer the select list.
    pub include: Vec<String>,
}

/// A column of ORDER BY (`name`, and ` DESC` ... as written after it).
#[derive(Debug, Clone, PartialEq)]
pub struct SortColumn {
    pub column: String,
    pub direction: String,
}

impl Wanted {
    /// ` USING gin` (nothing for a B-tree), as written before the keys.
    pub fn using(&self) -> String {
        if self.method == "btree" { String::new() } else { format!(" USING {}", self.method) }
    }

    /// `(keys) INCLUDE (...) WHERE ...`, as written after the table.
    pub fn shape(&self) -> String {
        let include = match self.include.is_empty() {
            true => String::new(),
            false => format!(" INCLUDE ({})", self.include.join(", ")),
        };
        let predicate = self.predicate.as_ref().map_or(String::new(), |p| format!(" WHERE {p}"));
        format!("({}){include}{predicate}", self.keys.join(", "))
    }
}

/// The indexes that would serve `terms` (and the order `sort`) on one table.
pub fn wanted(terms: &[Term], sort: &[SortColumn]) -> Vec<Wanted> {
    let mut equality: Vec<&str> = Vec::new();
    let mut range: Option<&str> = None;
    let mut predicates: Vec<(&str, &str)> = Vec::new();
    let mut gin: Vec<Wanted> = Vec::new();
    for term in terms {
        match term {
            Term::Equality { column } | Term::Join { column, .. } if !equality.contains(&column.as_str()) => {
                equality.push(column)
            }
            Term::Range { column } if range.is_none() => range = Some(column),
            Term::Constant { column, sql } => predicates.push((column, sql)),
            Term::Contains { column } => gin.push(Wanted {
                method: "gin",
                keys: vec![format!("{} jsonb_path_ops", quote_ident_if_needed(column))],
                key_names: vec![column.clone()],
                predicate: None,
                include: Vec::new(),
            }),
            Term::HasKey { column } => gin.push(Wanted {
                method: "gin",
                keys: vec![quote_ident_if_needed(column)],
                key_names: vec![column.clone()],
                predicate: None,
                include: Vec::new(),
            }),
            Term::TextSearch { expression } => gin.push(Wanted {
                method: "gin",
                keys: vec![format!("({expression})")],
                key_names: vec!["fts".to_string()],
                predicate: None,
                include: Vec::new(),
            }),
            _ => {}
        }
    }
    gin.dedup();
    let mut wanted = Vec::new();
    if !equality.is_empty() || range.is_some() || !predicates.is_empty() {
        let mut keys: Vec<(String, String)> =
            equality.iter().map(|c| (c.to_string(), quote_ident_if_needed(c))).collect();
        let sort_fits = sort.first().is_some_and(|s| range.is_none_or(|r| r == s.column));
        if sort_fits {
            for s in sort {
                if !keys.iter().any(|(name, _)| *name == s.column) {
                    keys.push((s.column.clone(), format!("{}{}", quote_ident_if_needed(&s.column), s.direction)));
                }
            }
        } else if let Some(r) = range.filter(|r| !keys.iter().any(|(name, _)| name == r)) {
            keys.push((r.to_string(), quote_ident_if_needed(r)));
        }
        // A partial index on nothing else is keyed on its predicate's column.
        if keys.is_empty()
            && let Some((column, _)) = predicates.first()
        {
            keys.push((column.to_string(), quote_ident_if_needed(column)));
        }
        let predicate = (!predicates.is_empty())
            .then(|| predicates.iter().map(|(_, sql)| sql.to_string()).collect::<Vec<_>>().join(" AND "));
        wanted.push(Wanted {
            method: "btree",
            key_names: keys.iter().map(|(name, _)| name.clone()).collect(),
            keys: keys.into_iter().map(|(_, sql)| sql).collect(),
            predicate,
            include: Vec::new(),
        });
    }
    wanted.extend(gin);
    wanted
}

/// An existing index of `table` that already serves `wanted`: same method,
/// the wanted keys as its leading keys, and the same predicate.
pub fn existing<'a>(table: &'a Table, wanted: &Wanted) -> Option<&'a Index> {
    table.indexes.iter().find(|index| {
        index.method == wanted.method
            && index.columns.len() >= wanted.key_names.len()
            && wanted.key_names.iter().zip(&index.columns).enumerate().all(|(i, (want, have))| {
                let have = have.trim_matches('"');
                let opclass = index.opclasses.get(i).cloned().flatten();
                // The default jsonb_ops serves @> too; jsonb_path_ops does not serve `?`.
                let path_ops_wanted = wanted.keys[i].ends_with(" jsonb_path_ops");
                let opclass_serves =
                    opclass.is_none() || (path_ops_wanted && opclass.as_deref() == Some("jsonb_path_ops"));
                (want == have || (want == "fts" && have.contains("to_tsvector"))) && opclass_serves
            })
            && normalize(index.predicate.as_deref()) == normalize(wanted.predicate.as_deref())
    })
}

/// A predicate without parentheses, spaces and casts to text, for comparison.
fn normalize(predicate: Option<&str>) -> Option<String> {
    predicate.map(|p| p.replace("::text", "").chars().filter(|c| !matches!(c, '(' | ')' | ' ' | '"')).collect())
}

/// The statements that create `wanted` on `table`: one `CREATE INDEX
/// CONCURRENTLY`, or for a partitioned table an index `ON ONLY` the parent,
/// one concurrent build per partition, and the attaches (new partitions get
/// the index automatically).
pub fn create_statements(table: &Table, wanted: &Wanted) -> Vec<String> {
    let name = index_name(&table.name, wanted);
    let tail = format!("{} {}", wanted.using(), wanted.shape());
    if !table.is_partitioned() {
        return vec![format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {}{tail};",
            quote_ident_if_needed(&name),
            table.sql_name()
        )];
    }
    // Each partition's index attaches to its parent's: the parent's `ON ONLY`
    // index for a partition of a sub-partitioned table, the top one otherwise.
    let index_of = |relation: &str| -> String {
        match relation.split_once('.') {
            Some((schema, name)) if relation != format!("{}.{}", table.schema, table.name) => {
                format!("{}.{}", quote_ident_if_needed(schema), quote_ident_if_needed(&index_name(name, wanted)))
            }
            _ => format!("{}.{}", quote_ident_if_needed(&table.schema), quote_ident_if_needed(&name)),
        }
    };
    let top = format!("{}.{}", table.schema, table.name);
    let parent_of = |relation: &str| table.parents.get(relation).cloned().unwrap_or_else(|| top.clone());
    let mut statements = vec![format!(
        "CREATE INDEX IF NOT EXISTS {} ON ONLY {}{tail};",
        quote_ident_if_needed(&name),
        table.sql_name()
    )];
    for middle in &table.intermediates {
        let (middle_schema, middle_name) = middle.split_once('.').unwrap_or((&table.schema, middle));
        statements.push(format!(
            "CREATE INDEX IF NOT EXISTS {} ON ONLY {}.{}{tail};",
            quote_ident_if_needed(&index_name(middle_name, wanted)),
            quote_ident_if_needed(middle_schema),
            quote_ident_if_needed(middle_name)
        ));
        statements.push(format!("ALTER INDEX {} ATTACH PARTITION {};", index_of(&parent_of(middle)), index_of(middle)));
    }
    for leaf in &table.leaves {
        let (leaf_schema, leaf_name) = leaf.split_once('.').unwrap_or((&table.schema, leaf));
        statements.push(format!(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {}.{}{tail};",
            quote_ident_if_needed(&index_name(leaf_name, wanted)),
            quote_ident_if_needed(leaf_schema),
            quote_ident_if_needed(leaf_name)
        ));
        statements.push(format!("ALTER INDEX {} ATTACH PARTITION {};", index_of(&parent_of(leaf)), index_of(leaf)));
    }
    statements
}

/// `<table>_<keys>_idx` (`_gin_idx`, `_partial_idx`), at most 63 bytes.
pub fn index_name(table: &str, wanted: &Wanted) -> String {
    // Different shapes on the same columns get different names, so that
    // `IF NOT EXISTS` never skips an index because another shape took its name:
    // GIN jsonb_path_ops `_gin_idx`, GIN default opclass `_keys_gin_idx`, a
    // partial index `_<hash of the predicate>_partial_idx`.
    let suffix = match (wanted.method, &wanted.predicate) {
        ("gin", _) if wanted.keys.iter().any(|k| k.ends_with(" jsonb_path_ops")) => "gin_idx".to_string(),
        ("gin", _) => "keys_gin_idx".to_string(),
        (_, Some(predicate)) => {
            let digest = sha2::Sha256::digest(predicate.as_bytes());
            format!("{:02x}{:02x}{:02x}_partial_idx", digest[0], digest[1], digest[2])
        }
        _ if !wanted.include.is_empty() => "covering_idx".to_string(),
        _ => "idx".to_string(),
    };
    let keys: Vec<String> = wanted
        .key_names
        .iter()
        .map(|k| k.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect())
        .collect();
    let mut name = format!("{table}_{}_{suffix}", keys.join("_"));
    let suffix = suffix.as_str();
    if name.len() > 63 {
        let keep = 63 - suffix.len() - 1;
        name = format!("{}_{suffix}", truncate(&name, keep));
    }
    name
}

/// At most `bytes` bytes of `name`, cut at a character boundary (PostgreSQL
/// names are at most 63 bytes).
pub(super) fn truncate(name: &str, bytes: usize) -> &str {
    let end = (0..=bytes.min(name.len())).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    &name[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(partitioned: bool) -> Table {
        Table {
            schema: "marketing".into(),
            name: "events".into(),
            rows: 1e6,
            partition_key: if partitioned { vec!["occurred_at".into()] } else { vec![] },
            leaves: if partitioned { vec!["marketing.events_p2026_11".into()] } else { vec![] },
            ..Table::default()
        }
    }

    #[test]
    fn equality_then_range_or_order() {
        let terms = [Term::Range { column: "clicked_at".into() }, Term::Equality { column: "country".into() }];
        let by_time = [SortColumn { column: "clicked_at".into(), direction: " DESC".into() }];
        assert_eq!(wanted(&terms, &by_time)[0].keys, ["country", "clicked_at DESC"]);
        let by_other = [SortColumn { column: "id".into(), direction: String::new() }];
        assert_eq!(wanted(&terms, &by_other)[0].keys, ["country", "clicked_at"]);
        let constant = [Term::Constant { column: "status".into(), sql: "status <> 'done'::text".into() }];
        let partial = &wanted(&constant, &[])[0];
        assert_eq!((partial.keys.clone(), partial.predicate.clone()), (vec!["status".into()], Some(constant_sql())));
    }

    fn constant_sql() -> String {
        "status <> 'done'::text".into()
    }

    #[test]
    fn partitioned_tables_get_the_per_partition_recipe() {
        let want = &wanted(&[Term::Equality { column: "utm_source".into() }], &[])[0];
        assert_eq!(
            create_statements(&table(false), want),
            ["CREATE INDEX CONCURRENTLY IF NOT EXISTS events_utm_source_idx ON marketing.events (utm_source);"]
        );
        assert_eq!(
            create_statements(&table(true), want),
            [
                "CREATE INDEX IF NOT EXISTS events_utm_source_idx ON ONLY marketing.events (utm_source);",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_p2026_11_utm_source_idx ON marketing.events_p2026_11 \
                 (utm_source);",
                "ALTER INDEX marketing.events_utm_source_idx ATTACH PARTITION marketing.events_p2026_11_utm_source_idx;",
            ]
        );
        let long = Wanted { key_names: vec!["x".repeat(80)], ..want.clone() };
        assert_eq!(index_name("events", &long).len(), 63);
    }

    #[test]
    fn an_existing_index_with_the_same_leading_keys_serves() {
        let mut t = table(false);
        t.indexes.push(Index {
            name: "marketing.events_src".into(),
            method: "btree".into(),
            columns: vec!["utm_source".into(), "occurred_at".into()],
            valid: true,
            ..Index::default()
        });
        let want = &wanted(&[Term::Equality { column: "utm_source".into() }], &[])[0];
        assert_eq!(existing(&t, want).map(|i| i.name.as_str()), Some("marketing.events_src"));
        let other = &wanted(&[Term::Equality { column: "occurred_at".into() }], &[])[0];
        assert_eq!(existing(&t, other), None);
    }

    #[test]
    fn different_shapes_on_one_column_get_different_names() {
        let path_ops = &wanted(&[Term::Contains { column: "payload".into() }], &[])[0];
        let keys = &wanted(&[Term::HasKey { column: "payload".into() }], &[])[0];
        assert_eq!(index_name("clicks", path_ops), "clicks_payload_gin_idx");
        assert_eq!(index_name("clicks", keys), "clicks_payload_keys_gin_idx");
        let open = &wanted(&[Term::Constant { column: "status".into(), sql: "status <> 'done'::text".into() }], &[])[0];
        let new = &wanted(&[Term::Constant { column: "status".into(), sql: "status <> 'new'::text".into() }], &[])[0];
        assert_ne!(index_name("clicks", open), index_name("clicks", new));
    }
}
