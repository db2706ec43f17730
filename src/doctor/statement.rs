//! Reading the statement itself, not only the conditions its plan prints:
//! which columns of each table it compares with a constant or a parameter
//! (equality, range, `@>`), joins on, sorts by (with the direction), and
//! selects. Candidate indexes ([`super::candidates`]) are built from this.
//!
//! The statement is parsed by sqlparser with its PostgreSQL dialect (pure
//! Rust; `docs/query-doctor.md` says why not libpg_query). A statement it
//! cannot parse, or a column it cannot tie to one table, gives fewer
//! candidates, never a wrong one.

use sqlparser::ast::{
    BinaryOperator, Expr, JoinConstraint, JoinOperator, ObjectName, ObjectNamePart, OrderByKind, OrderBySort,
    SelectItem, SetExpr, Statement, TableFactor, TableWithJoins,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// How the statement uses one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUse {
    /// The table as written (`marketing.leads`, or `leads`).
    pub name: String,
    /// Columns compared with `=` (or `IN`) to a constant or parameter, in order.
    pub equality: Vec<String>,
    /// Columns compared with `<`, `>`, `<=`, `>=` or `BETWEEN`.
    pub range: Vec<String>,
    /// Columns compared with `=` to a column of another table.
    pub joins: Vec<String>,
    /// ORDER BY columns of this table, with `true` for DESC, when every
    /// ORDER BY item is a column of this table.
    pub order: Vec<(String, bool)>,
    /// Columns tested with `@>`.
    pub contains: Vec<String>,
    /// The columns it selects, when the select list is only plain columns.
    pub selected: Option<Vec<String>>,
}

/// The tables `sql` reads and how; empty when it is not a statement sqlparser reads.
pub fn read(sql: &str) -> Vec<TableUse> {
    let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else { return Vec::new() };
    let Some(statement) = statements.into_iter().next() else { return Vec::new() };
    let mut reader = Reader::default();
    match &statement {
        Statement::Query(query) => {
            if let SetExpr::Select(select) = query.body.as_ref() {
                reader.tables_of(&select.from);
                if let Some(selection) = &select.selection {
                    reader.condition(selection);
                }
                reader.projection(&select.projection);
            }
            if let Some(order_by) = &query.order_by
                && let OrderByKind::Expressions(items) = &order_by.kind
            {
                let sorted: Vec<(Option<usize>, String, bool)> = items
                    .iter()
                    .map(|item| {
                        let desc = matches!(item.options.sort, Some(OrderBySort::Desc));
                        match reader.sorted_column(&item.expr) {
                            Some((table, column)) => (Some(table), column, desc),
                            None => (None, String::new(), desc),
                        }
                    })
                    .collect();
                let table = sorted.first().and_then(|s| s.0);
                if table.is_some() && sorted.iter().all(|s| s.0 == table) {
                    let order = sorted.into_iter().map(|(_, column, desc)| (column, desc)).collect();
                    reader.tables[table.unwrap_or_default()].usage.order = order;
                }
            }
        }
        Statement::Update(update) => {
            reader.tables_of(std::slice::from_ref(&update.table));
            if let Some(selection) = &update.selection {
                reader.condition(selection);
            }
        }
        Statement::Delete(delete) => {
            let (sqlparser::ast::FromTable::WithFromKeyword(from) | sqlparser::ast::FromTable::WithoutKeyword(from)) =
                &delete.from;
            reader.tables_of(from);
            if let Some(selection) = &delete.selection {
                reader.condition(selection);
            }
        }
        _ => {}
    }
    reader.tables.into_iter().map(|t| t.usage).collect()
}

#[derive(Debug, Default)]
struct Known {
    /// The alias, or the table's own name, lower-cased.
    alias: String,
    usage: TableUse,
}

/// A column: the table's position in the statement, and its name.
type Column = (usize, String);

#[derive(Debug, Default)]
struct Reader {
    tables: Vec<Known>,
    /// The select list: each item's name (its alias, or the column's) and
    /// the column it is, when it is one.
    outputs: Vec<(Option<String>, Option<Column>)>,
}

impl Reader {
    fn tables_of(&mut self, from: &[TableWithJoins]) {
        for item in from {
            self.factor(&item.relation);
            for join in &item.joins {
                self.factor(&join.relation);
                if let Some(JoinConstraint::On(on)) = constraint(&join.join_operator) {
                    self.condition(on);
                }
            }
        }
    }

    fn factor(&mut self, factor: &TableFactor) {
        if let TableFactor::Table { name, alias, args: None, .. } = factor {
            let name = object_name(name);
            let alias = match alias {
                Some(alias) => self::name(&alias.name),
                None => name.rsplit('.').next().unwrap_or_default().to_string(),
            };
            self.tables.push(Known { alias, usage: TableUse { name, ..TableUse::default() } });
        }
    }

    /// The table (index) and column a column reference names.
    fn column(&self, expr: &Expr) -> Option<(usize, String)> {
        match expr {
            Expr::Identifier(ident) if self.tables.len() == 1 => Some((0, name(ident))),
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                let qualifier = name(&parts[parts.len() - 2]);
                let table = self.tables.iter().position(|t| t.alias == qualifier)?;
                Some((table, name(&parts[parts.len() - 1])))
            }
            Expr::Nested(inner) => self.column(inner),
            _ => None,
        }
    }

    /// An ORDER BY item's column: an output name (`ORDER BY s` for
    /// `created_at AS s`) or position (`ORDER BY 2`) first, as PostgreSQL
    /// resolves them, else a column of the tables.
    fn sorted_column(&self, expr: &Expr) -> Option<(usize, String)> {
        match expr {
            Expr::Identifier(ident) => {
                let wanted = name(ident);
                match self.outputs.iter().find(|(output, _)| output.as_deref() == Some(wanted.as_str())) {
                    Some((_, column)) => column.clone(),
                    None => self.column(expr),
                }
            }
            Expr::Value(value) => {
                let position: usize = value.value.to_string().parse().ok()?;
                self.outputs.get(position.checked_sub(1)?).and_then(|(_, column)| column.clone())
            }
            _ => self.column(expr),
        }
    }

    fn condition(&mut self, expr: &Expr) {
        match expr {
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                self.condition(left);
                self.condition(right);
            }
            Expr::Nested(inner) => self.condition(inner),
            Expr::BinaryOp { left, op, right } => {
                let (l, r) = (self.column(left), self.column(right));
                match (l, r) {
                    (Some((a, ca)), Some((b, cb))) if a != b && *op == BinaryOperator::Eq => {
                        push(&mut self.tables[a].usage.joins, ca);
                        push(&mut self.tables[b].usage.joins, cb);
                    }
                    (Some((table, column)), None) if is_value(right) => self.compare(table, column, op, false),
                    (None, Some((table, column))) if is_value(left) => self.compare(table, column, op, true),
                    _ => {}
                }
            }
            Expr::Between { expr, negated: false, low, high } if is_value(low) && is_value(high) => {
                if let Some((table, column)) = self.column(expr) {
                    push(&mut self.tables[table].usage.range, column);
                }
            }
            Expr::In { expr, target: sqlparser::ast::InTarget::List(list), negated: false, .. }
                if list.iter().all(is_value) =>
            {
                if let Some((table, column)) = self.column(expr) {
                    push(&mut self.tables[table].usage.equality, column);
                }
            }
            _ => {}
        }
    }

    /// `column op value` (or `value op column` when `flipped`).
    fn compare(&mut self, table: usize, column: String, op: &BinaryOperator, flipped: bool) {
        let usage = &mut self.tables[table].usage;
        match op {
            BinaryOperator::Eq => push(&mut usage.equality, column),
            BinaryOperator::Lt | BinaryOperator::Gt | BinaryOperator::LtEq | BinaryOperator::GtEq => {
                push(&mut usage.range, column)
            }
            BinaryOperator::AtArrow if !flipped => push(&mut usage.contains, column),
            _ => {}
        }
    }

    fn projection(&mut self, items: &[SelectItem]) {
        let mut columns: Vec<Option<(usize, String)>> = Vec::new();
        for item in items {
            let (output, column) = match item {
                SelectItem::ExprWithAlias { expr, alias } => (Some(name(alias)), self.column(expr)),
                SelectItem::UnnamedExpr(expr) => {
                    let column = self.column(expr);
                    (column.as_ref().map(|(_, c)| c.clone()), column)
                }
                _ => (None, None),
            };
            self.outputs.push((output, column.clone()));
            columns.push(column);
        }
        if columns.iter().all(Option::is_some) {
            for (table, known) in self.tables.iter_mut().enumerate() {
                let mine = columns.iter().flatten().filter(|(t, _)| *t == table).map(|(_, c)| c.clone()).collect();
                known.usage.selected = Some(mine);
            }
        }
    }
}

fn push(list: &mut Vec<String>, column: String) {
    if !list.contains(&column) {
        list.push(column);
    }
}

/// A constant, a parameter, or an expression of them (`now() - interval
/// '7 days'`, `$1::date`): anything without a column reference.
fn is_value(expr: &Expr) -> bool {
    match expr {
        Expr::Value(_) | Expr::TypedString { .. } | Expr::Interval(_) => true,
        Expr::Cast { expr, .. } | Expr::Nested(expr) | Expr::UnaryOp { expr, .. } => is_value(expr),
        Expr::BinaryOp { left, right, .. } => is_value(left) && is_value(right),
        Expr::Function(_) => !mentions_column(expr),
        _ => false,
    }
}

/// Whether a function call has an argument that is not a value (a column).
fn mentions_column(expr: &Expr) -> bool {
    let Expr::Function(function) = expr else { return false };
    match &function.args {
        sqlparser::ast::FunctionArguments::None => false,
        sqlparser::ast::FunctionArguments::List(list) => list.args.iter().any(|arg| match arg {
            sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(e)) => !is_value(e),
            _ => true,
        }),
        _ => true,
    }
}

fn constraint(operator: &JoinOperator) -> Option<&JoinConstraint> {
    match operator {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::RightSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c)
        | JoinOperator::RightAnti(c) => Some(c),
        _ => None,
    }
}

/// An identifier as PostgreSQL reads it: folded to lower case unless quoted.
fn name(ident: &sqlparser::ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn object_name(name: &ObjectName) -> String {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => self::name(ident),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests;
