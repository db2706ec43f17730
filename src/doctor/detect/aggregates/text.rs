//! Reading expressions as a VERBOSE plan prints them: column references
//! qualified by an alias (which differs between the Aggregate and the scans
//! of partitions), string literals that may contain anything. Not a parser:
//! enough to name the columns an expression reads and to compare
//! expressions printed by different nodes.

/// The columns a printed expression reads (`events.utm_source` →
/// `utm_source`): every qualified name, as the plans read here read events alone.
pub fn columns(text: &str) -> Vec<String> {
    let word_at =
        |rest: &str| -> String { rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut found: Vec<String> = Vec::new();
    let (mut rest, mut quoted) = (text, false);
    while let Some(c) = rest.chars().next() {
        let word = word_at(rest);
        let name = !quoted && (c.is_ascii_alphabetic() || c == '_');
        if name && rest[word.len()..].starts_with('.') {
            let column = word_at(&rest[word.len() + 1..]);
            if !column.is_empty() && !found.contains(&column) {
                found.push(column);
            }
            rest = &rest[word.len() + 1..];
            continue;
        }
        quoted ^= c == '\'';
        rest = &rest[if word.is_empty() { c.len_utf8() } else { word.len() }..];
    }
    found
}

/// Whether an expression calls one of PostgreSQL's common aggregate functions.
pub fn calls_aggregate(text: &str) -> bool {
    const AGGREGATES: [&str; 15] = [
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "array_agg",
        "string_agg",
        "json_agg",
        "jsonb_agg",
        "bool_and",
        "bool_or",
        "every",
        "percentile_cont",
        "percentile_disc",
        "mode",
    ];
    AGGREGATES.iter().any(|name| {
        text.match_indices(&format!("{name}(")).any(|(at, _)| {
            at == 0 || !text.as_bytes()[at - 1].is_ascii_alphanumeric() && text.as_bytes()[at - 1] != b'_'
        })
    })
}

/// A plain (unquoted) column name.
pub fn is_identifier(text: &str) -> bool {
    !text.is_empty()
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with(|c: char| c.is_ascii_digit())
}

/// `text` with the qualifiers of column references removed
/// (`events_1.occurred_at` → `occurred_at`), string literals untouched: the
/// Aggregate prints the parent's alias, the scans their partitions'.
pub fn unqualified(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let (mut at, mut quoted) = (0, false);
    while at < chars.len() {
        let c = chars[at];
        let starts_word = !quoted
            && (c.is_ascii_alphabetic() || c == '_')
            && (at == 0 || !(word(chars[at - 1]) || chars[at - 1] == '.'));
        if !starts_word {
            quoted ^= c == '\'';
            out.push(c);
            at += 1;
            continue;
        }
        let end = (at..chars.len()).find(|&i| !word(chars[i])).unwrap_or(chars.len());
        let qualifies = chars.get(end) == Some(&'.')
            && chars.get(end + 1).is_some_and(|&next| next.is_ascii_alphabetic() || next == '_' || next == '"');
        if !qualifies {
            out.extend(&chars[at..end]);
        }
        at = if qualifies { end + 1 } else { end };
    }
    out
}

/// The value of a `'value'::text` literal.
pub fn text_literal(text: &str) -> Option<String> {
    let inner = text.trim().strip_suffix("::text")?.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'')).then(|| inner.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualifiers_go_and_literals_stay() {
        assert_eq!(
            unqualified("((e_1.occurred_at AT TIME ZONE 'a.b'::text))::date"),
            "((occurred_at AT TIME ZONE 'a.b'::text))::date"
        );
        assert_eq!(unqualified("count(DISTINCT events.user_id)"), "count(DISTINCT user_id)");
        assert_eq!(unqualified("(x.n > 1.5) AND (y = 'it''s x.y')"), "(n > 1.5) AND (y = 'it''s x.y')");
        assert_eq!(columns("((e.utm_source || '/e.x'::text) || e.utm_campaign)"), ["utm_source", "utm_campaign"]);
        assert_eq!(columns("(e.n > 1.5)"), ["n"]);
        assert!(calls_aggregate("(count(*) * 2)") && !calls_aggregate("(e.account || e.discount)"));
    }
}
