//! Unit tests of `predicate`.

use super::*;

#[test]
fn filters_split_into_index_shapes() {
    let filter = "((clicks.clicked_at >= '2026-10-15 00:00:00+00'::timestamp with time zone) AND \
                  (clicks.country = 'IS'::text))";
    assert_eq!(
        terms(filter, "clicks"),
        [Term::Range { column: "clicked_at".into() }, Term::Equality { column: "country".into() }]
    );
    assert_eq!(
        terms("(clicks.payload @> '{\"campaign\": \"a AND b\"}'::jsonb)", "clicks"),
        [Term::Contains { column: "payload".into() }]
    );
    assert_eq!(
        terms("(clicks.status <> 'done'::text)", "clicks"),
        [Term::Constant { column: "status".into(), sql: "status <> 'done'::text".into() }]
    );
    assert_eq!(
        terms("((l.enriched_at IS NULL) AND l.active AND (NOT l.\"Deleted\"))", "l"),
        [
            Term::Constant { column: "enriched_at".into(), sql: "enriched_at IS NULL".into() },
            Term::Constant { column: "active".into(), sql: "active".into() },
            Term::Constant { column: "Deleted".into(), sql: "NOT \"Deleted\"".into() },
        ]
    );
    assert_eq!(
        terms("(e.utm_source = ANY ('{google,bing}'::text[]))", "e"),
        [Term::Equality { column: "utm_source".into() }]
    );
    assert_eq!(terms("('2026-01-01'::date < e.day)", "e"), [Term::Range { column: "day".into() }]);
}

#[test]
fn wrapped_columns_and_joins_are_told_apart() {
    assert_eq!(
        terms("((events_1.occurred_at)::date = '2026-11-20'::date)", "events_1"),
        [Term::Wrapped {
            column: "occurred_at".into(),
            cast: Some("date".into()),
            op: "=".into(),
            value: "'2026-11-20'::date".into()
        }]
    );
    assert_eq!(
        terms("(('ch'::text || (corr.a)::text) = k.channel)", "k"),
        [Term::Join { column: "channel".into(), op: "=".into() }]
    );
    assert_eq!(terms("(lower(l.email) ~~ '%x%'::text)", "l"), [Term::Other]);
    assert_eq!(
        terms("(to_tsvector('english'::regconfig, p.body) @@ '''sale'''::tsquery)", "p"),
        [Term::TextSearch { expression: "to_tsvector('english'::regconfig, body)".into() }]
    );
}

#[test]
fn parentheses_are_stripped_only_when_they_enclose_everything() {
    assert_eq!(strip_parens("((a = 1))"), "a = 1");
    assert_eq!(strip_parens("(a = 1) AND (b = 2)"), "(a = 1) AND (b = 2)");
    assert_eq!(split_and("(a = ')' AND b) AND (c = 1)"), ["(a = ')' AND b)", "(c = 1)"]);
    assert_eq!(unqualify("lower(xe.a) || e.b || e.c", "e"), "lower(xe.a) || b || c");
}

#[test]
fn only_what_an_index_can_hold_becomes_a_shape() {
    // PostgreSQL prints an alias that needs quoting quoted.
    assert_eq!(terms("(\"Leads\".email = 'x'::text)", "Leads"), [Term::Equality { column: "email".into() }]);
    // A partial index predicate must be immutable: no now(), no subquery.
    assert_eq!(terms("(l.status <> (CURRENT_DATE)::text)", "l"), [Term::Other]);
    assert_eq!(terms("(l.status <> $0)", "l"), [Term::Other]);
    // @> on an array is GIN with its default opclass, not jsonb_path_ops.
    assert_eq!(terms("(l.tags @> '{b}'::text[])", "l"), [Term::HasKey { column: "tags".into() }]);
    assert_eq!(terms("(l.props @> '{\"a\": 1}'::jsonb)", "l"), [Term::Contains { column: "props".into() }]);
    // One-argument to_tsvector is not immutable, so it cannot be indexed.
    assert_eq!(terms("(to_tsvector(l.body) @@ '''x'''::tsquery)", "l"), [Term::Other]);
}
