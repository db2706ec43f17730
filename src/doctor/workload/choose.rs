//! The greedy choice of the workload plan: plan every statement, pool the
//! candidates, then add the candidate worth most (time saved across the
//! statements per second of statistics, minus what it costs the table's
//! writers per second) while that is positive.

use sqlx::PgConnection;

use super::generic::{self, Hypothetical};
use super::{Proposal, Redundant, Rejected, Statement, UPKEEP_MS_PER_ROW, WorkloadOptions};
use crate::doctor::candidates::{self, Candidate};
use crate::doctor::index;
use crate::doctor::plan::Node;
use crate::doctor::statement;

/// At most this many indexes are proposed.
const MAX_INDEXES: usize = 10;

pub(super) struct Chosen {
    pub proposals: Vec<Proposal>,
    pub rejected: Vec<Rejected>,
    pub redundant: Vec<Redundant>,
    pub candidates: usize,
}

/// The best candidate of a round: its net value (ms per second), its
/// position in the pool, the time it saves (ms), and the statements' new costs.
type Best = (f64, usize, f64, Vec<(usize, f64)>);

/// A candidate with what it touches.
struct Pooled {
    candidate: Candidate,
    /// Positions of the statements whose plans read its table.
    statements: Vec<usize>,
    writes_per_s: f64,
    indexes: i64,
}

pub(super) async fn choose(
    conn: &mut PgConnection,
    statements: &mut [Statement],
    period_s: f64,
    options: &WorkloadOptions,
) -> Result<Chosen, sqlx::Error> {
    let texts: Vec<String> = statements.iter().map(|s| generic::preparable(&s.query)).collect();
    let mut plans: Vec<Option<serde_json::Value>> = Vec::new();
    for (statement, text) in statements.iter_mut().zip(&texts) {
        match generic::plan(conn, text, &[]).await? {
            Ok((cost, plan)) => {
                statement.cost_before = Some(cost);
                plans.push(Some(plan));
            }
            Err(reason) => {
                statement.not_planned = Some(reason);
                plans.push(None);
            }
        }
    }
    let planned: Vec<serde_json::Value> = plans.iter().flatten().cloned().collect();
    let catalog = super::catalog(conn, &planned).await?;
    // Which tables each statement reads (the partitioned root for a partition).
    let reads: Vec<Vec<String>> = plans
        .iter()
        .map(|plan| {
            plan.as_ref().map_or(Vec::new(), |p| {
                super::relations(&Node::new(p))
                    .iter()
                    .filter_map(|r| catalog.target(r).map(|t| format!("{}.{}", t.schema, t.name)))
                    .collect()
            })
        })
        .collect();
    let mut pool: Vec<Pooled> = Vec::new();
    for (text, plan) in texts.iter().zip(&plans) {
        let Some(plan) = plan else { continue };
        for candidate in candidates::generate(&statement::read(text), &Node::new(plan), &catalog, &[]) {
            if candidate.wanted.method != "btree" || pool.iter().any(|p| p.candidate == candidate) {
                continue;
            }
            let touching =
                reads.iter().enumerate().filter(|(_, r)| r.contains(&candidate.table)).map(|(i, _)| i).collect();
            let (writes_per_s, indexes) = writes(conn, &candidate.table).await?;
            pool.push(Pooled { candidate, statements: touching, writes_per_s, indexes });
        }
    }

    let mut current: Vec<Option<f64>> = statements.iter().map(|s| s.cost_before).collect();
    let mut chosen: Vec<usize> = Vec::new();
    let mut proposals = Vec::new();
    let mut rejected = Vec::new();
    while chosen.len() < MAX_INDEXES {
        let mut best: Option<Best> = None;
        let mut outweighed = Vec::new();
        for (position, pooled) in pool.iter().enumerate().filter(|(i, _)| !chosen.contains(i)) {
            let set: Vec<Hypothetical> = chosen
                .iter()
                .chain(std::iter::once(&position))
                .map(|&i| hypothetical(&pool[i].candidate, &catalog))
                .collect();
            let mut saved = 0.0;
            let mut costs = Vec::new();
            let mut serves_one = false;
            for &s in &pooled.statements {
                let (Some(now), Some(before)) = (current[s], statements[s].cost_before) else { continue };
                let Ok((cost, _)) = generic::plan(conn, &texts[s], &set).await? else { continue };
                if cost < now {
                    saved += statements[s].total_ms * (now - cost) / before;
                    serves_one |= cost <= now * (1.0 - options.min_cost_cut);
                    costs.push((s, cost));
                }
            }
            if !serves_one {
                continue;
            }
            let write_cost = pooled.writes_per_s * UPKEEP_MS_PER_ROW;
            let net = saved / period_s - write_cost;
            if net <= 0.0 {
                outweighed.push(Rejected {
                    index: candidates::describe(&pooled.candidate),
                    saved_ms_per_s: saved / period_s,
                    write_cost_ms_per_s: write_cost,
                });
                continue;
            }
            if best.as_ref().is_none_or(|b| net > b.0) {
                best = Some((net, position, saved, costs));
            }
        }
        let Some((_, position, saved, costs)) = best else {
            rejected = outweighed;
            break;
        };
        let pooled = &pool[position];
        let mut serves = Vec::new();
        for (s, cost) in costs {
            if current[s].is_some_and(|now| cost <= now * (1.0 - options.min_cost_cut)) {
                serves.push(s + 1);
            }
            current[s] = Some(cost);
        }
        let table = catalog.table(&pooled.candidate.table);
        proposals.push(Proposal {
            index: candidates::describe(&pooled.candidate),
            serves,
            saved_ms: saved,
            table_writes_per_s: pooled.writes_per_s,
            table_indexes: pooled.indexes,
            write_cost_ms_per_s: pooled.writes_per_s * UPKEEP_MS_PER_ROW,
            sql: table.map_or(Vec::new(), |t| index::create_statements(t, &pooled.candidate.wanted)),
        });
        chosen.push(position);
        rejected = outweighed;
    }
    for (statement, cost) in statements.iter_mut().zip(current) {
        statement.cost_after = cost;
    }
    let redundant = chosen.iter().flat_map(|&i| made_redundant(&pool[i].candidate, &catalog)).collect();
    Ok(Chosen { proposals, rejected, redundant, candidates: pool.len() })
}

fn hypothetical(candidate: &Candidate, catalog: &crate::doctor::Catalog) -> Hypothetical {
    let table = catalog.table(&candidate.table).map_or(candidate.table.clone(), |t| t.sql_name());
    Hypothetical { table, wanted: candidate.wanted.clone() }
}

/// Writes per second (rows inserted, and updated other than HOT) into
/// `table` and its partitions since the statistics were reset, and its
/// index count.
async fn writes(conn: &mut PgConnection, table: &str) -> Result<(f64, i64), sqlx::Error> {
    sqlx::query_as(include_str!("../../../sql/doctor/table_writes.sql")).bind(table).fetch_one(conn).await
}

/// Existing plain B-tree indexes of the candidate's table whose keys lead
/// the candidate's (and are not unique, partial or tally's own).
fn made_redundant(candidate: &Candidate, catalog: &crate::doctor::Catalog) -> Vec<Redundant> {
    let Some(table) = catalog.table(&candidate.table) else { return Vec::new() };
    let wanted = &candidate.wanted;
    if wanted.predicate.is_some() {
        return Vec::new();
    }
    table
        .indexes
        .iter()
        .filter(|existing| {
            existing.valid
                && !existing.unique
                && existing.method == "btree"
                && existing.predicate.is_none()
                && existing.columns.len() <= wanted.key_names.len()
                && existing.columns.iter().zip(&wanted.key_names).all(|(have, want)| have.trim_matches('"') == want)
                && crate::doctor::audit::own::find(&existing.name.replace('"', "")).is_none()
        })
        .map(|existing| Redundant {
            index: existing.name.clone(),
            by: candidates::describe(candidate),
            sql: format!("DROP INDEX CONCURRENTLY IF EXISTS {};", existing.name),
        })
        .collect()
}
