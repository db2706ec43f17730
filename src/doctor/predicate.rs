//! Reading the conditions PostgreSQL prints in a plan (`Filter`, `Index
//! Cond`, `Join Filter`, with VERBOSE: every column qualified by its alias)
//! well enough to tell which columns an index could serve, and how.
//!
//! This is not a SQL parser: conditions are split into their top-level `AND`
//! terms and each term is matched against the shapes an index can use
//! (`col = const`, `col >= const`, `col @> const`, `col IS NULL`, ...). Any
//! other term is kept as `Other`, so nothing is suggested from a guess.

/// One top-level `AND` term of a condition, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `col = value` or `col = ANY (array)`: a B-tree equality column.
    Equality { column: String },
    /// `col < value`, `>=`, ...: a B-tree range column.
    Range { column: String },
    /// `col @> value` on jsonb: GIN `jsonb_path_ops`.
    Contains { column: String },
    /// `col ? key`, `?|`, `?&` on jsonb: GIN `jsonb_ops` (path_ops lacks them).
    HasKey { column: String },
    /// `expr @@ query` (full-text search): GIN on the expression.
    TextSearch { expression: String },
    /// `col <> value`, `col IS [NOT] NULL`, a boolean column: a constant
    /// predicate, served by a partial index `WHERE <sql>`.
    Constant { column: String, sql: String },
    /// The column wrapped in a cast or function (`(col)::date = ...`): no
    /// index on the column can serve it.
    Wrapped { column: String, cast: Option<String>, op: String, value: String },
    /// A comparison with a column of another relation (a join condition).
    Join { column: String, op: String },
    /// Anything else.
    Other,
}

/// Splits `condition` into its top-level `AND` terms and classifies each for
/// the relation printed as `alias`.
pub fn terms(condition: &str, alias: &str) -> Vec<Term> {
    // Conditions print the alias as PostgreSQL quotes it ("Leads".email).
    let alias = &crate::db::sql::quote_ident_if_needed(alias);
    split_and(strip_parens(condition)).into_iter().map(|term| classify(term, alias)).collect()
}

/// The top-level `AND` terms of `condition`, as written.
pub fn split_and(condition: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    for (at, depth) in top_level(condition) {
        if depth == 0 && condition[at..].starts_with(" AND ") {
            terms.push(condition[start..at].trim());
            start = at + 5;
        }
    }
    terms.push(condition[start..].trim());
    terms.retain(|t| !t.is_empty());
    terms
}

/// Removes parentheses that enclose the whole text (any number of pairs).
pub fn strip_parens(mut text: &str) -> &str {
    loop {
        text = text.trim();
        if !(text.starts_with('(') && text.ends_with(')')) {
            return text;
        }
        // The opening parenthesis must close at the very end.
        let closes_at_end = top_level(text).all(|(at, depth)| depth > 0 || at == 0 || at == text.len() - 1);
        if !closes_at_end {
            return text;
        }
        text = &text[1..text.len() - 1];
    }
}

/// Byte offsets of `text` outside string literals, with the parenthesis
/// depth before each byte (a `(` counts from the next byte on).
fn top_level(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let bytes = text.as_bytes();
    let (mut depth, mut quoted, mut quote) = (0usize, false, b'\'');
    (0..bytes.len()).filter_map(move |at| {
        let byte = bytes[at];
        if quoted {
            if byte == quote {
                quoted = false;
            }
            return None;
        }
        match byte {
            b'\'' | b'"' => {
                quoted = true;
                quote = byte;
                None
            }
            b'(' => {
                depth += 1;
                Some((at, depth - 1))
            }
            b')' => {
                depth = depth.saturating_sub(1);
                Some((at, depth))
            }
            // Only offsets where a character starts: callers slice there.
            _ if !text.is_char_boundary(at) => None,
            _ => Some((at, depth)),
        }
    })
}

/// Operators an index can serve, longest first so `>=` wins over `>`.
const OPERATORS: [&str; 11] = [" >= ", " <= ", " <> ", " @> ", " ?| ", " ?& ", " @@ ", " = ", " < ", " > ", " ? "];

fn classify(term: &str, alias: &str) -> Term {
    let term = strip_parens(term);
    for (suffix, negated) in [(" IS NOT NULL", true), (" IS NULL", false)] {
        if let Some(operand) = term.strip_suffix(suffix) {
            return match column_of(operand, alias) {
                Some(column) => Term::Constant {
                    sql: format!(
                        "{} IS {}NULL",
                        crate::db::sql::quote_ident_if_needed(&column),
                        if negated { "NOT " } else { "" }
                    ),
                    column,
                },
                None => Term::Other,
            };
        }
    }
    if let Some(column) = column_of(term, alias) {
        return Term::Constant { sql: crate::db::sql::quote_ident_if_needed(&column), column };
    }
    if let Some(column) = term.strip_prefix("NOT ").and_then(|operand| column_of(operand, alias)) {
        return Term::Constant { sql: format!("NOT {}", crate::db::sql::quote_ident_if_needed(&column)), column };
    }
    let Some((left, op, right)) = split_operator(term) else { return Term::Other };
    // Put this relation's side on the left.
    let (left, op, right) =
        if mentions(left, alias) || !mentions(right, alias) { (left, op, right) } else { (right, mirror(op), left) };
    if !mentions(left, alias) || mentions(right, alias) {
        return Term::Other;
    }
    let value_is_constant = !right.contains('.') || is_literal(right);
    if op == "@@" {
        // Only the two-argument to_tsvector (with a configuration) is immutable, so indexable.
        let expression = unqualify_quoted(left, alias);
        let two_arguments = expression.contains("to_tsvector('") && expression.contains("::regconfig");
        return if two_arguments { Term::TextSearch { expression } } else { Term::Other };
    }
    let Some(column) = column_of(left, alias) else {
        return match wrapped_column(left, alias) {
            Some((column, cast)) if value_is_constant => {
                Term::Wrapped { column, cast, op: op.to_string(), value: right.to_string() }
            }
            _ => Term::Other,
        };
    };
    if !value_is_constant {
        return Term::Join { column, op: op.to_string() };
    }
    match op {
        "=" => Term::Equality { column },
        "<" | "<=" | ">" | ">=" => Term::Range { column },
        // jsonb containment: GIN jsonb_path_ops; arrays: GIN with the default opclass.
        "@>" if right.ends_with("::jsonb") => Term::Contains { column },
        "@>" if right.ends_with("[]") => Term::HasKey { column },
        "?" | "?|" | "?&" => Term::HasKey { column },
        // A partial index predicate must be immutable: a literal only.
        "<>" if is_literal(right) && !right.starts_with('$') => {
            Term::Constant { sql: format!("{} <> {right}", crate::db::sql::quote_ident_if_needed(&column)), column }
        }
        _ => Term::Other,
    }
}

/// `left op right` at the top level of `term`.
pub fn split_operator(term: &str) -> Option<(&str, &'static str, &str)> {
    top_level(term).filter(|&(_, depth)| depth == 0).find_map(|(at, _)| {
        OPERATORS
            .iter()
            .find(|op| term[at..].starts_with(*op))
            .map(|op| (term[..at].trim(), op.trim(), term[at + op.len()..].trim()))
    })
}

/// The operator with its operands swapped (`a < b` is `b > a`).
pub fn mirror(op: &'static str) -> &'static str {
    match op {
        "<" => ">",
        ">" => "<",
        "<=" => ">=",
        ">=" => "<=",
        other => other,
    }
}

/// The column name when `operand` is exactly `alias.column`.
fn column_of(operand: &str, alias: &str) -> Option<String> {
    let rest = operand.trim().strip_prefix(&format!("{alias}."))?;
    is_identifier(rest).then(|| unquote(rest))
}

/// `(alias.column)::type` or `func(alias.column)`: the column and the cast.
fn wrapped_column(operand: &str, alias: &str) -> Option<(String, Option<String>)> {
    let operand = operand.trim();
    if let Some(open) = operand.strip_prefix('(')
        && let Some((inner, cast)) = open.split_once(")::")
        && let Some(column) = column_of(inner, alias)
    {
        return Some((column, Some(cast.to_string())));
    }
    let (_, args) = operand.split_once('(')?;
    let args = args.strip_suffix(')')?;
    args.split(',').find_map(|arg| column_of(arg.trim(), alias)).map(|column| (column, None))
}

/// Whether `text` refers to a column of `alias`.
fn mentions(text: &str, alias: &str) -> bool {
    let needle = format!("{alias}.");
    text.match_indices(&needle)
        .any(|(at, _)| at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric() && text.as_bytes()[at - 1] != b'_')
}

/// A literal (`'...'::type`, a number, `ANY ('{...}'::type[])`, `$1`).
fn is_literal(text: &str) -> bool {
    let text = text.trim();
    text.starts_with('\'')
        || text.starts_with("ANY ('")
        || text.starts_with('$')
        || text.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '-')
}

fn is_identifier(text: &str) -> bool {
    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return !inner.is_empty() && !inner.contains('"');
    }
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit())
}

fn unquote(identifier: &str) -> String {
    identifier.trim_matches('"').to_string()
}

/// `alias.` removed from every column reference, for use in DDL.
pub fn unqualify(text: &str, alias: &str) -> String {
    unqualify_quoted(text, &crate::db::sql::quote_ident_if_needed(alias))
}

/// `unqualify` for an alias already quoted as PostgreSQL prints it.
fn unqualify_quoted(text: &str, alias: &str) -> String {
    let needle = format!("{alias}.");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let boundary = at == 0 || {
            let before = rest.as_bytes()[at - 1];
            !before.is_ascii_alphanumeric() && before != b'_'
        };
        out.push_str(&rest[..at]);
        if !boundary {
            out.push_str(&needle);
        }
        rest = &rest[at + needle.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests;
