//! The FROM clause of a declared SELECT: its tables, their aliases and the
//! equalities that join them, and the tables' names qualified as
//! PostgreSQL resolves them (`public` when none is written).

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Ident, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, Query, Select, TableFactor,
    VisitMut, VisitorMut,
};

use super::read::{Problem, USE_CONCURRENTLY, column_of, ident, problem};

/// A table of the FROM clause.
pub(super) struct Table {
    pub(super) name: String,
    pub(super) alias: String,
    /// Equalities of its join condition: (its column, other alias, other column).
    pub(super) equality: Vec<(String, String, String)>,
    pub(super) place: Option<ObjectName>,
}

pub(super) fn tables(select: &Select, refusals: &mut Vec<Problem>) -> Result<Vec<Table>, Problem> {
    let mut tables = Vec::new();
    if select.from.is_empty() {
        return Err(problem("reads no table (no FROM): an aggregate's day comes from a table", None));
    }
    if select.from.len() > 1 {
        refusals.push(problem(
            format!("a comma join (FROM a, b): write JOIN ... ON a.col = b.col; else {USE_CONCURRENTLY}"),
            Some(&select.from[1].relation),
        ));
    }
    for from in &select.from {
        tables.extend(factor(&from.relation, refusals));
        for join in &from.joins {
            let Some(mut table) = factor(&join.relation, refusals) else { continue };
            let constraint = match &join.join_operator {
                JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                    Some(c)
                }
                _ => None,
            };
            match constraint {
                Some(JoinConstraint::On(on)) => {
                    for (a, b) in equalities(on) {
                        if a.0 == table.alias {
                            table.equality.push((a.1, b.0, b.1));
                        } else if b.0 == table.alias {
                            table.equality.push((b.1, a.0, a.1));
                        }
                    }
                }
                Some(JoinConstraint::Using(columns)) => {
                    let previous = tables.last().map(|t: &Table| t.alias.clone()).unwrap_or_default();
                    for column in columns {
                        if let Some(name) = column.0.last().and_then(ObjectNamePart::as_ident) {
                            table.equality.push((ident(name), previous.clone(), ident(name)));
                        }
                    }
                }
                _ => refusals.push(problem(
                    format!("a join that is not [LEFT] JOIN ... ON an equality: {USE_CONCURRENTLY}"),
                    Some(&join.relation),
                )),
            }
            tables.push(table);
        }
    }
    Ok(tables)
}

fn factor(relation: &TableFactor, refusals: &mut Vec<Problem>) -> Option<Table> {
    match relation {
        TableFactor::Table { name, alias, args: None, .. } => {
            let parts: Vec<String> = name.0.iter().filter_map(ObjectNamePart::as_ident).map(ident).collect();
            let alias = alias.as_ref().map(|a| ident(&a.name)).or_else(|| parts.last().cloned()).unwrap_or_default();
            Some(Table { name: parts.join("."), alias, equality: Vec::new(), place: Some(name.clone()) })
        }
        other => {
            refusals.push(problem(
                format!("`{other}` is not a table (a subquery or a function in FROM): {USE_CONCURRENTLY}"),
                Some(other),
            ));
            let alias = match other {
                TableFactor::Derived { alias: Some(alias), .. } | TableFactor::Function { alias: Some(alias), .. } => {
                    ident(&alias.name)
                }
                _ => return None,
            };
            Some(Table { name: format!("({alias})"), alias, equality: Vec::new(), place: None })
        }
    }
}

type ColumnRef = (String, String);

/// The `a.x = b.y` conjuncts of a condition.
fn equalities(on: &Expr) -> Vec<(ColumnRef, ColumnRef)> {
    match on {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut found = equalities(left);
            found.extend(equalities(right));
            found
        }
        Expr::Nested(inner) => equalities(inner),
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (column_of(left), column_of(right)) {
            (Some((Some(a), x)), Some((Some(b), y))) => vec![((a, x), (b, y))],
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Qualifies every table name with its schema (`public` when none is
/// written) and lower-cases unquoted names, in place; a common table
/// expression's name and a function in FROM are left as they are.
pub(super) fn qualify_tables(query: &mut Query) {
    let ctes: Vec<String> =
        query.with.iter().flat_map(|with| with.cte_tables.iter().map(|cte| ident(&cte.alias.name))).collect();
    let _ = query.visit(&mut Qualify { ctes });
}

struct Qualify {
    ctes: Vec<String>,
}

impl VisitorMut for Qualify {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: None, .. } = factor {
            let cte = name.0.len() == 1 && name.0[0].as_ident().is_some_and(|id| self.ctes.contains(&ident(id)));
            if !cte {
                if name.0.len() == 1 {
                    name.0.insert(0, ObjectNamePart::Identifier(Ident::new("public")));
                }
                for part in name.0.iter_mut() {
                    if let ObjectNamePart::Identifier(id) = part
                        && id.quote_style.is_none()
                    {
                        id.value = id.value.to_lowercase();
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}
