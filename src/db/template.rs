//! SQL templates: the statements tally builds (aggregate definitions,
//! invalidation triggers, the claim of marks, the partition moves, the
//! doctor's catalog reads) are files under `sql/`, compiled in with
//! `include_str!`, with `{{name}}` placeholders that tally fills with values
//! it built itself (quoted names, formatted dates, settings it validated).
//! Nothing a user typed is ever substituted into a template.
//!
//! A placeholder may also call a named fragment with arguments,
//! `{{touch_window(e.occurred_at, cv.occurred_at)}}`: a rule written once
//! in its own file and used by several templates (see
//! `aggregates::rules`).

/// Fills `{{name}}` placeholders of `template` with `values`, leaving out
/// whole-line `--` comments (they document the file, not the statement).
///
/// Panics in debug builds when a placeholder is left unfilled: templates
/// are compiled in, so a test that renders each one catches a missing value.
pub fn render(template: &str, values: &[(&str, &str)]) -> String {
    let mut text = String::with_capacity(template.len());
    for line in template.lines().filter(|line| !line.trim_start().starts_with("--")) {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    // One pass over the template: a value is never searched for placeholders
    // (a quoted name containing `{{` stays as it is).
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            let name = &after[..end];
            values.iter().find(|(n, _)| *n == name).map(|(_, value)| (*value, end))
        });
        match value {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                debug_assert!(false, "unfilled placeholder in SQL template: {}", &rest[start..]);
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces each call `{{name(a, b, ...)}}` in `text` with `expand(args)`.
pub fn expand_calls(text: &str, name: &str, expand: impl Fn(&[&str]) -> String) -> String {
    let open = format!("{{{{{name}(");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(&open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(")}}") else {
            // Not a call: keep the text as it is (render's check reports it).
            out.push_str(&rest[start..]);
            return out;
        };
        let args: Vec<&str> = after[..end].split(',').map(str::trim).collect();
        out.push_str(&expand(&args));
        rest = &after[end + 3..];
    }
    out.push_str(rest);
    out
}

/// The SQL of fragment `name` in a fragments file: the lines after a
/// `-- name:` line up to the next blank line or `-- other:` line, comments
/// left out, joined by single spaces.
pub fn fragment<'a>(file: &'a str, name: &str) -> String {
    let marker = format!("-- {name}:");
    let mut lines = file.lines().skip_while(|line| line.trim() != marker).skip(1);
    let mut parts: Vec<&'a str> = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line.is_empty() || (line.starts_with("-- ") && line.ends_with(':')) {
            break;
        }
        if !line.starts_with("--") {
            parts.push(line);
        }
    }
    debug_assert!(!parts.is_empty(), "no fragment {name} in its file");
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(render("SELECT {{a}} + {{b}}, {{a}}", &[("a", "1"), ("b", "2")]), "SELECT 1 + 2, 1");
        assert_eq!(render("{{a}}", &[("a", "x{{a}}")]), "x{{a}}", "values are not rendered again");
        assert_eq!(render("-- uses {{c}}\nSELECT {{a}}\n  -- {{d}}\nFROM t", &[("a", "1")]), "SELECT 1\nFROM t");
    }

    #[test]
    fn calls_expand_with_their_arguments() {
        let text = "ON x AND {{w(e.t, c.t)}} AND {{w(a, b)}} END";
        let expanded = expand_calls(text, "w", |args| format!("[{}<{}]", args[0], args[1]));
        assert_eq!(expanded, "ON x AND [e.t<c.t] AND [a<b] END");
        assert_eq!(expand_calls("no call", "w", |_| String::new()), "no call");
    }

    #[test]
    fn fragments_are_read_by_name() {
        let file = "-- header\n\n-- first:\n-- why\na <= b\n  AND c\n\n-- second:\nd + 1\n";
        assert_eq!(fragment(file, "first"), "a <= b AND c");
        assert_eq!(fragment(file, "second"), "d + 1");
    }
}
