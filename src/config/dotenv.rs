//! `.env` in the working directory: `KEY=VALUE` lines (dotenvy's syntax:
//! quotes, `export`, comments) that set variables the environment does not
//! already set, since the environment wins.
//!
//! A `.env` often holds the password, so no error or warning ever quotes a
//! line of it: only the file, the line number and the key. A line that does
//! not parse stops tally (exit 2) unless every key it could have set is
//! already in the environment, in which case it could not have changed
//! anything and a warning says so.

use std::path::Path;

use super::ConfigError;

/// Loads `path` if it is a file. Returns warnings to log once logging is up
/// (this runs before, so that `.env` can set `RUST_LOG` too).
pub fn load(path: &Path) -> Result<Vec<String>, ConfigError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| env_error(format!("cannot read {shown}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = line_of(&String::from_utf8_lossy(e.as_bytes()), e.utf8_error().valid_up_to());
        env_error(format!("{shown} line {line} is not UTF-8 text; save the file as UTF-8"))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut warnings = Vec::new();
    let mut searched_to = 0;
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok((key, value)) => {
                if value.contains('\0') {
                    // The environment cannot hold a NUL (setting one would
                    // panic, quoting the value); said without the value.
                    return Err(env_error(format!(
                        "{shown}: the value of {key} contains a NUL character, which no environment variable can \
                         hold; remove it"
                    )));
                }
                // Set but empty counts as unset, as `DatabaseUrl::from_env` reads it.
                if !super::env::Environment::is_set(&key) {
                    // SAFETY: called from `main` before the async runtime or
                    // any other thread starts, so nothing reads the
                    // environment concurrently.
                    unsafe { std::env::set_var(&key, value) };
                }
            }
            Err(dotenvy::Error::LineParse(logical_line, _)) => {
                let bad = locate(text, &logical_line, &mut searched_to);
                let keys = keys_of(bad.text);
                let lines = match bad.lines {
                    1 => format!("line {}", bad.first),
                    n => format!(
                        "lines {} to {} (an unclosed quote runs to the end of the file)",
                        bad.first,
                        bad.first + n - 1
                    ),
                };
                let named = match keys.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", keys.join(", ")),
                };
                let all_set = !keys.is_empty() && keys.iter().all(|k| super::env::Environment::is_set(k));
                if !all_set {
                    return Err(env_error(format!(
                        "{shown} {lines}{named} is not a valid KEY=VALUE line (an unclosed quote, a space in an \
                         unquoted value, a missing `=`?); fix or remove it"
                    )));
                }
                warnings.push(format!(
                    "{shown} {lines}{named} is not a valid KEY=VALUE line and was skipped; the environment already \
                     sets {}, which wins anyway",
                    keys.join(", ")
                ));
            }
            Err(e) => return Err(env_error(format!("cannot read {shown}: {}", safe_error(&e)))),
        }
    }
    Ok(warnings)
}

fn env_error(reason: String) -> ConfigError {
    ConfigError::DotEnv(reason)
}

/// An error of dotenvy's other than a line that did not parse, without the
/// text of any line (dotenvy quotes the line in some of its messages).
fn safe_error(error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::Io(e) => e.to_string(),
        dotenvy::Error::EnvVar(e) => e.to_string(),
        _ => "the file could not be parsed".to_string(),
    }
}

/// Where a bad line (one or more physical lines) sits in the file, and
/// its whole text there.
struct Span<'a> {
    first: usize,
    lines: usize,
    text: &'a str,
}

/// Finds the text dotenvy reported (a whole logical line, or only its
/// value) in `text` after `*from`: errors come in file order, and a line
/// identical to an earlier one that parsed would have parsed too. The span
/// runs from the start of the physical line it begins on.
fn locate<'a>(text: &'a str, reported: &str, from: &mut usize) -> Span<'a> {
    let reported = reported.trim_end_matches(['\n', '\r']);
    let first_physical = reported.lines().next().unwrap_or("");
    let offset = text.get(*from..).and_then(|rest| rest.find(first_physical)).map_or(*from, |i| *from + i);
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = match text[offset..].find(reported) {
        Some(0) => offset + reported.len(),
        _ => offset + first_physical.len(),
    }
    .min(text.len());
    let end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    *from = end;
    let span = &text[start..end];
    Span { first: line_of(text, start), lines: span.lines().count().max(1), text: span }
}

/// 1-based line number of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// The keys the physical lines of a bad logical line would set: the word
/// before `=` on each (after `export`). Empty when one of them has no such
/// word, since nobody can tell what it meant to set.
fn keys_of(logical_line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for line in logical_line.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let key: String = line.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.').collect();
        // Without a `=` after it, the word may be anything, a password too:
        // it is neither named nor trusted to be a key.
        if key.is_empty() || !line[key.len()..].trim_start().starts_with('=') {
            return Vec::new();
        }
        keys.push(key);
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_located_and_keyed_without_their_text() {
        let text = "A=1\n\nDATABASE_URL=postgres://u:s3cretPW@h/db 'x\nB=2\n";
        let mut from = 0;
        let span = locate(text, "DATABASE_URL=postgres://u:s3cretPW@h/db 'x\nB=2\n", &mut from);
        assert_eq!((span.first, span.lines), (3, 2));
        // dotenvy reports only the value of a line whose value is bad.
        let text = "A=1\nDATABASE_URL=postgres://u:pw@h/db extra words\nB=2\n";
        let mut from = 0;
        let span = locate(text, "postgres://u:pw@h/db extra words", &mut from);
        assert_eq!((span.first, span.lines), (2, 1));
        assert_eq!(keys_of(span.text), ["DATABASE_URL"]);
        assert_eq!(keys_of("DATABASE_URL=postgres://u:s3cretPW@h/db 'x\nB=2\n"), ["DATABASE_URL", "B"]);
        assert_eq!(keys_of("export  TALLY_CONFIG = 'a b"), ["TALLY_CONFIG"]);
        assert!(keys_of("=oops").is_empty());
        assert!(keys_of("A=1\n  'garbage").is_empty());
        assert!(keys_of("s3cretPW").is_empty(), "a lone word is never named");
        assert!(keys_of("DATABASE_URL postgres://u:pw@h/db").is_empty());
    }
}
