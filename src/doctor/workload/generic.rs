//! Planning a statement as `pg_stat_statements` stores it (`$1`, `$2` in
//! place of the constants) on PostgreSQL 15, which has no `EXPLAIN
//! (GENERIC_PLAN)`: the text is prepared, `plan_cache_mode` is
//! `force_generic_plan`, and `EXPLAIN EXECUTE` runs with NULL for every
//! parameter (a generic plan does not depend on the values).
//!
//! What does not work, and is reported as "not planned": utility statements,
//! parameters whose type PostgreSQL cannot infer (`$1 IS NULL`, `$1 + $2`),
//! and text pg_stat_statements wrote that PostgreSQL does not parse back
//! (`interval $3` is rewritten `$3::interval`, which it does).
//!
//! A plan cached before a hypothetical index was created ignores it, and one
//! cached with it fails after the index is dropped: every plan here is
//! prepared after the hypothetical indexes it may use, and deallocated
//! before they are dropped.

use sqlx::{AssertSqlSafe, PgConnection};

use crate::doctor::index::Wanted;

/// The statement's text as PREPARE takes it.
pub fn preparable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.to_ascii_lowercase().find("interval $") {
        let digits: String = rest[at + 10..].chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            out.push_str(&rest[..at + 10]);
            rest = &rest[at + 10..];
            continue;
        }
        out.push_str(&rest[..at]);
        out.push_str(&format!("${digits}::interval"));
        rest = &rest[at + 10 + digits.len()..];
    }
    out.push_str(rest);
    out.trim().trim_end_matches(';').to_string()
}

/// A B-tree index created hypothetically for the plans.
pub struct Hypothetical {
    pub table: String,
    pub wanted: Wanted,
}

/// The estimated cost and plan of `text`'s generic plan, with `indexes`
/// created hypothetically for it; errors come back as text (the statement
/// is then "not planned"). Runs under a savepoint of the caller's
/// transaction, so a failure leaves the transaction usable.
pub async fn plan(
    conn: &mut PgConnection,
    text: &str,
    indexes: &[Hypothetical],
) -> Result<Result<(f64, serde_json::Value), String>, sqlx::Error> {
    sqlx::raw_sql("SAVEPOINT tally_workload").execute(&mut *conn).await?;
    let result = planned(conn, text, indexes).await;
    match result {
        Ok(planned) => {
            sqlx::raw_sql("RELEASE SAVEPOINT tally_workload").execute(&mut *conn).await?;
            Ok(Ok(planned))
        }
        Err(e) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT tally_workload").execute(&mut *conn).await?;
            // Whatever was created before the failure is gone from the plan cache with the rollback;
            // hypothetical indexes are not transactional.
            sqlx::raw_sql("DEALLOCATE ALL; SELECT hypopg_reset()").execute(&mut *conn).await?;
            Ok(Err(crate::db::describe(&e)))
        }
    }
}

async fn planned(
    conn: &mut PgConnection,
    text: &str,
    indexes: &[Hypothetical],
) -> Result<(f64, serde_json::Value), sqlx::Error> {
    let mut created = Vec::new();
    for index in indexes {
        let statement = format!("CREATE INDEX ON {} {}", index.table, index.wanted.shape());
        let oid: i64 = sqlx::query_scalar("SELECT indexrelid::int8 FROM hypopg_create_index($1)")
            .bind(&statement)
            .fetch_one(&mut *conn)
            .await?;
        created.push(oid);
    }
    sqlx::raw_sql("SET LOCAL plan_cache_mode = force_generic_plan").execute(&mut *conn).await?;
    sqlx::raw_sql(AssertSqlSafe(format!("PREPARE tally_workload AS {text}"))).execute(&mut *conn).await?;
    let parameters: i32 = sqlx::query_scalar(
        "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = 'tally_workload'",
    )
    .fetch_one(&mut *conn)
    .await?;
    let execute = match parameters {
        0 => "EXECUTE tally_workload".to_string(),
        n => format!("EXECUTE tally_workload({})", vec!["NULL"; n as usize].join(", ")),
    };
    let output: serde_json::Value =
        sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN (VERBOSE, FORMAT JSON) {execute}")))
            .fetch_one(&mut *conn)
            .await?;
    sqlx::raw_sql("DEALLOCATE tally_workload").execute(&mut *conn).await?;
    for oid in created {
        sqlx::query("SELECT hypopg_drop_index($1::oid)").bind(oid).execute(&mut *conn).await?;
    }
    let plan = output.get(0).and_then(|top| top.get("Plan")).cloned().unwrap_or_default();
    let cost = plan.get("Total Cost").and_then(serde_json::Value::as_f64).unwrap_or(f64::NAN);
    Ok((cost, plan))
}

#[cfg(test)]
mod tests {
    use super::preparable;

    #[test]
    fn interval_parameters_become_casts() {
        assert_eq!(
            preparable("SELECT * FROM t WHERE at > now() - interval $3 AND x = $1;"),
            "SELECT * FROM t WHERE at > now() - $3::interval AND x = $1"
        );
        assert_eq!(preparable("SELECT interval '1 day', INTERVAL $12"), "SELECT interval '1 day', $12::interval");
    }
}
