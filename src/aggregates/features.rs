//! What the server offers that the aggregates may use. Visitor sketches
//! (`visitors_hll`, SPEC §4.1) need the postgresql-hll extension: where it
//! is installed, [`ensure_extension`] creates it in tally's database (it
//! needs a superuser: hll is not a trusted extension); where it is not, the
//! sketch columns are left out and everything else works the same.

use sqlx::{PgConnection, PgPool};

/// How to get visitor sketches where they are off.
pub const SKETCHES_HINT: &str = "install the postgresql-hll extension (Debian: apt install postgresql-15-hll) \
     and run CREATE EXTENSION hll in this database as a superuser (or once as a superuser, then tally migrate)";

/// The capabilities the definitions are rendered for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `hll_add_agg` and `hll_hash_text` are visible in tally's search path.
    pub sketches: bool,
}

impl Features {
    /// Reads what the connected database offers.
    pub async fn detect(conn: &mut PgConnection) -> Result<Features, sqlx::Error> {
        // pg_proc, not to_regprocedure: naming a type that does not exist
        // there is an error, not NULL.
        let sketches: bool = sqlx::query_scalar(
            "SELECT count(DISTINCT proname) = 2 FROM pg_proc
             WHERE proname IN ('hll_add_agg', 'hll_hash_text') AND pg_function_is_visible(oid)",
        )
        .fetch_one(conn)
        .await?;
        Ok(Features { sketches })
    }
}

/// Creates the hll extension when the server has it and the database does
/// not; returns whether sketches are on afterwards. A refusal (tally's role
/// is not a superuser) or a missing package is logged as a warning with the
/// fix, once per call: the aggregates go on without sketches.
pub async fn ensure_extension(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if Features::detect(&mut conn).await?.sketches {
        return Ok(true);
    }
    let available: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hll')")
            .fetch_one(&mut *conn)
            .await?;
    if !available {
        tracing::warn!("visitor sketches are off: the server has no hll extension; to turn them on, {SKETCHES_HINT}");
        return Ok(false);
    }
    match sqlx::query("CREATE EXTENSION IF NOT EXISTS hll").execute(&mut *conn).await {
        Ok(_) => {
            let on = Features::detect(&mut conn).await?.sketches;
            match on {
                true => tracing::info!("created the hll extension: visitor sketches are on"),
                false => tracing::warn!(
                    "visitor sketches are off: the hll extension exists in this database but its functions are not \
                     on tally's search_path; add its schema to the role's search_path (ALTER ROLE ... SET search_path)"
                ),
            }
            Ok(on)
        }
        Err(e) => {
            tracing::warn!(
                reason = %crate::db::describe(&e),
                "visitor sketches are off: tally could not create the hll extension; to turn them on, {SKETCHES_HINT}"
            );
            Ok(false)
        }
    }
}

/// [`ensure_extension`] where its failure must not stop anything: a
/// database error is logged and sketches count as off until the next try.
pub async fn prepare(pool: &PgPool) -> bool {
    ensure_extension(pool).await.unwrap_or_else(|e| {
        tracing::warn!(error = %crate::db::describe(&e), "could not check for the hll extension; visitor sketches are off for now");
        false
    })
}
