//! Reading a declared aggregate's SELECT with sqlparser (PostgreSQL
//! dialect): its key, its day column, its fact table, the tables joined to
//! it and how, and the first construct incremental mode cannot maintain.
//! Pure, so it is unit-tested (`tests.rs`).

use std::ops::ControlFlow;

use sqlparser::ast::{
    CastKind, DataType, Expr, GroupByExpr, Ident, InTarget, ObjectNamePart, Query, SelectItem, SetExpr, Spanned,
    Statement, Value, WindowType, visit_expressions,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::from::{Table, qualify_tables, tables};

/// What tally read from a declared SELECT.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The statement, with every table name schema-qualified (`public.` for
    /// an unqualified one) and unquoted names lower-cased, as PostgreSQL reads them.
    pub query: Query,
    /// The unique key: output column names, the day first.
    pub key: Vec<String>,
    /// Every output column's name, in select-list order.
    pub columns: Vec<String>,
    pub day: Day,
    /// The fact table, `schema.table`.
    pub fact: String,
    /// The other tables, each joined to the fact table by an equality.
    pub joins: Vec<Join>,
    /// Why incremental mode cannot maintain it, if it cannot.
    pub not_incremental: Option<Problem>,
}

/// The day column: a column of the fact table and how it becomes a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    /// The fact table's alias (or name) in the statement.
    pub alias: String,
    pub column: String,
    /// The IANA zone of `(col AT TIME ZONE 'Zone')::date`; `None`: a date column.
    pub zone: Option<String>,
}

/// A table joined to the fact table: its `column` equals the fact table's `fact_column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// `schema.table`.
    pub table: String,
    pub column: String,
    pub fact_column: String,
}

/// A problem with the SQL: what is wrong and what to do, and where (line, column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub place: Option<(u64, u64)>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.place {
            Some((line, column)) => write!(f, "line {line}, column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

pub(super) fn problem(message: impl Into<String>, at: Option<&dyn Spanned>) -> Problem {
    let place = at.map(|node| node.span().start).filter(|start| start.line > 0).map(|start| (start.line, start.column));
    Problem { message: message.into(), place }
}

const DAY_FORM: &str = "write the day as (t.col AT TIME ZONE 'Zone')::date for a timestamptz column, or t.col for a date column, and put it first in the key";
pub(super) const USE_CONCURRENTLY: &str = "incremental mode cannot maintain it exactly; use mode = \"concurrently\"";

/// Reads `text`, one SELECT; `key`: the configured key, or `None` for the GROUP BY columns.
pub fn read(text: &str, key: Option<&[String]>) -> Result<Reading, Problem> {
    let mut query = one_query(text)?;
    qualify_tables(&mut query);
    let mut refusals = clause_refusals(&query);
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Err(problem(
            "is not one plain SELECT (a UNION, INTERSECT, EXCEPT or VALUES): tally finds the key, the day and the \
             fact table in one SELECT ... FROM ... GROUP BY",
            Some(query.body.as_ref()),
        ));
    };
    let outputs = outputs(&select.projection)?;
    let columns: Vec<String> = outputs.iter().map(|(name, _)| name.clone()).collect();
    let key = match key {
        Some(key) => given_key(key, &columns)?,
        None => group_by_key(&select.group_by, &outputs)?,
    };
    let Some(first) = key.first() else {
        return Err(problem("has an empty key; write `key = [\"day\", ...]`", None));
    };
    let day_expr =
        outputs.iter().find(|(name, _)| name == first).map(|(_, e)| e.clone()).unwrap_or(Expr::value(Value::Null));
    let (table_ref, column, zone) = day_of(&day_expr).ok_or_else(|| {
        problem(format!("the first key column `{first}` is `{day_expr}`, not a day: {DAY_FORM}"), Some(&day_expr))
    })?;
    if let Some(zone) = &zone
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        return Err(problem(format!("`{zone}` is not an IANA timezone (e.g. 'UTC', 'Europe/Paris')"), Some(&day_expr)));
    }
    let tables = tables(select, &mut refusals)?;
    let alias = match table_ref {
        Some(alias) => alias,
        None if tables.len() == 1 => tables[0].alias.clone(),
        None => {
            return Err(problem(
                format!("the day column `{column}` names no table, and the SELECT reads several: write t.{column}"),
                Some(&day_expr),
            ));
        }
    };
    let Some(fact) = tables.iter().find(|t| t.alias == alias) else {
        return Err(problem(format!("the day column's table `{alias}` is not in FROM: {DAY_FORM}"), Some(&day_expr)));
    };
    let joins = joins_to(fact, &tables, &mut refusals);
    refusals.extend(expression_refusals(&query, &day_expr));
    Ok(Reading {
        key,
        columns,
        day: Day { alias, column, zone },
        fact: fact.name.clone(),
        joins,
        not_incremental: refusals.into_iter().next(),
        query: *query,
    })
}

/// The one statement of `text`, a query.
fn one_query(text: &str) -> Result<Box<Query>, Problem> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, text)
        .map_err(|e| problem(format!("is not SQL that tally can read: {e}"), None))?;
    let mut statements = statements.into_iter();
    let statement = match (statements.next(), statements.len()) {
        (None, _) => return Err(problem("holds no statement; write one SELECT", None)),
        (Some(statement), 0) => statement,
        (Some(_), more) => {
            return Err(problem(
                format!("holds {} statements; it must hold exactly one SELECT (nothing was run)", more + 1),
                None,
            ));
        }
    };
    match statement {
        Statement::Query(query) => Ok(query),
        other => {
            let word = other.to_string().split_whitespace().next().unwrap_or("this").to_uppercase();
            Err(problem(
                format!(
                    "is a {word} statement, not a SELECT; write the query that computes the aggregate (nothing was run)"
                ),
                Some(&other),
            ))
        }
    }
}

/// WITH, LIMIT/OFFSET and FETCH: what incremental mode refuses of the query's clauses.
fn clause_refusals(query: &Query) -> Vec<Problem> {
    let mut refusals = Vec::new();
    if let Some(with) = &query.with {
        refusals.push(problem(format!("a WITH clause: {USE_CONCURRENTLY}, or join the tables directly"), Some(with)));
    }
    if let Some(limit) = &query.limit_clause {
        refusals.push(problem(format!("LIMIT/OFFSET keeps rows of other days out: {USE_CONCURRENTLY}"), Some(limit)));
    }
    if query.fetch.is_some() {
        refusals.push(problem(format!("FETCH keeps rows of other days out: {USE_CONCURRENTLY}"), None));
    }
    refusals
}

/// The configured key, each column one of the SELECT's, none twice.
fn given_key(key: &[String], columns: &[String]) -> Result<Vec<String>, Problem> {
    for (index, column) in key.iter().enumerate() {
        if !columns.contains(column) {
            return Err(problem(
                format!("key column `{column}` is not a column of the SELECT (its columns: {})", columns.join(", ")),
                None,
            ));
        }
        if key[..index].contains(column) {
            return Err(problem(format!("key column `{column}` is listed twice (position {})", index + 1), None));
        }
    }
    Ok(key.to_vec())
}

/// The tables other than `fact`, each with the equality that joins it to
/// the fact table; one that has none is refused for incremental mode.
fn joins_to(fact: &Table, tables: &[Table], refusals: &mut Vec<Problem>) -> Vec<Join> {
    let mut joins = Vec::new();
    for table in tables.iter().filter(|t| t.alias != fact.alias) {
        match table.equality.iter().find(|(_, other, _)| *other == fact.alias) {
            Some((column, _, fact_column)) => {
                joins.push(Join { table: table.name.clone(), column: column.clone(), fact_column: fact_column.clone() })
            }
            None => refusals.push(problem(
                format!(
                    "`{}` is not joined to the fact table `{}` by an equality of columns (JOIN {} ON {}.col = {}.col): \
                     a change to it would dirty no day; {USE_CONCURRENTLY}",
                    table.name, fact.name, table.name, table.alias, fact.alias
                ),
                table.place.as_ref().map(|p| p as &dyn Spanned),
            )),
        }
    }
    joins
}

/// Each output column's name (its alias, or the name PostgreSQL gives a
/// column or a function call) and expression.
fn outputs(projection: &[SelectItem]) -> Result<Vec<(String, Expr)>, Problem> {
    projection
        .iter()
        .map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => Ok((ident(alias), expr.clone())),
            SelectItem::UnnamedExpr(expr) => match implicit_name(expr) {
                Some(name) => Ok((name, expr.clone())),
                None => Err(problem(format!("the column `{expr}` has no name: write `{expr} AS name`"), Some(expr))),
            },
            other => Err(problem(
                format!("`{other}`: name the columns instead, so that tally knows the aggregate's columns"),
                Some(other),
            )),
        })
        .collect()
}

fn implicit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(id) => Some(ident(id)),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident),
        Expr::Function(function) => function.name.0.last().and_then(ObjectNamePart::as_ident).map(ident),
        Expr::Cast { expr, kind: CastKind::DoubleColon, .. } | Expr::Nested(expr) => implicit_name(expr),
        _ => None,
    }
}

/// An identifier as PostgreSQL reads it: lower-cased unless quoted.
pub(super) fn ident(id: &Ident) -> String {
    match id.quote_style {
        Some(_) => id.value.clone(),
        None => id.value.to_lowercase(),
    }
}

/// The GROUP BY columns, in select-list order.
fn group_by_key(group_by: &GroupByExpr, outputs: &[(String, Expr)]) -> Result<Vec<String>, Problem> {
    let GroupByExpr::Expressions(items, modifiers) = group_by else {
        return Err(problem("GROUP BY ALL: write the columns, or give `key = [...]`", None));
    };
    if items.is_empty() {
        return Err(problem(
            "has no GROUP BY to take the key from: give `key = [\"day\", ...]` in its [aggregates.NAME] section",
            None,
        ));
    }
    if !modifiers.is_empty() {
        return Err(problem("GROUP BY with ROLLUP/CUBE modifiers: give `key = [...]`", None));
    }
    let mut positions = Vec::new();
    for item in items {
        let position = match item {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    n.parse::<usize>().ok().filter(|n| (1..=outputs.len()).contains(n)).map(|n| n - 1)
                }
                _ => None,
            },
            _ => outputs.iter().position(|(_, e)| e == item).or_else(|| match item {
                Expr::Identifier(id) => outputs.iter().position(|(name, _)| *name == ident(id)),
                _ => None,
            }),
        };
        match position {
            Some(position) => positions.push(position),
            None => {
                return Err(problem(
                    format!(
                        "GROUP BY `{item}` is not a column of the SELECT, so the key cannot be taken from it: \
                         select it, or give `key = [...]`"
                    ),
                    Some(item),
                ));
            }
        }
    }
    positions.sort_unstable();
    positions.dedup();
    Ok(positions.into_iter().map(|p| outputs[p].0.clone()).collect())
}

/// `(t.col AT TIME ZONE 'Zone')::date` (or `CAST(... AS date)`), `t.col`,
/// `t.col::date`: (table alias, column, zone).
fn day_of(expr: &Expr) -> Option<(Option<String>, String, Option<String>)> {
    let unwrap = |e: &Expr| -> Expr {
        let mut e = e.clone();
        while let Expr::Nested(inner) = e {
            e = *inner;
        }
        e
    };
    match unwrap(expr) {
        Expr::Cast { expr, data_type: DataType::Date, .. } => match unwrap(&expr) {
            Expr::AtTimeZone { timestamp, time_zone } => {
                let zone = match unwrap(&time_zone) {
                    Expr::Value(v) => match v.value {
                        Value::SingleQuotedString(zone) => zone,
                        _ => return None,
                    },
                    _ => return None,
                };
                column_of(&unwrap(&timestamp)).map(|(t, c)| (t, c, Some(zone)))
            }
            inner => column_of(&inner).map(|(t, c)| (t, c, None)),
        },
        other => column_of(&other).map(|(t, c)| (t, c, None)),
    }
}

pub(super) fn column_of(expr: &Expr) -> Option<(Option<String>, String)> {
    match expr {
        Expr::Identifier(column) => Some((None, ident(column))),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some((Some(ident(&parts[0])), ident(&parts[1]))),
        _ => None,
    }
}

/// Subqueries (they read tables whose changes no rule sees) and windows
/// over several days (not partitioned by the day).
fn expression_refusals(query: &Query, day: &Expr) -> Vec<Problem> {
    let mut found = Vec::new();
    let _ = visit_expressions(query, |expr: &Expr| {
        match expr {
            Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::In { target: InTarget::Subquery(_) | InTarget::Table { .. }, .. } => found.push(problem(
                format!("a subquery: a change to what it reads would dirty no day; {USE_CONCURRENTLY}"),
                Some(expr),
            )),
            Expr::Function(function) => {
                let by_day = match &function.over {
                    None => true,
                    Some(WindowType::WindowSpec(spec)) => spec.partition_by.contains(day),
                    Some(WindowType::NamedWindow(_)) => false,
                };
                if !by_day {
                    found.push(problem(
                        format!(
                            "the window function `{}` is not partitioned by the day ({day}): a window over several \
                             days; {USE_CONCURRENTLY}",
                            function.name
                        ),
                        Some(expr),
                    ));
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    found
}
