//! The `--rejects` file: refused when it is the input under any name (the
//! same path, a relative or absolute spelling of it, a symlink, a hard link,
//! or the file stdin is redirected from), opened for appending otherwise.
//! Appending rejected lines to the file being read would feed them back in
//! as input, and on a large file never end. Also refused: `-` (which would
//! create a file named `-`, where a user expects stdout or stderr), a
//! directory, and a path in a directory that does not exist; all before
//! connecting, so a mistyped argument costs nothing.

use std::fs::{File, Metadata, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::reader::Source;

/// `Err` (a usage error: say what to do) when `rejects` cannot be the
/// rejects file (see above) or is the input file. Called before anything is
/// read or written. Compares device and inode, so every name of one file is
/// caught; a `rejects` that does not exist yet cannot be the input, and is fine.
pub fn check(source: &Source, rejects: &Path) -> Result<(), String> {
    usable(rejects)?;
    let Ok(target) = std::fs::metadata(rejects) else {
        return Ok(());
    };
    let (input, input_name) = match source {
        Source::File(path) => match std::fs::metadata(path) {
            Ok(metadata) => (metadata, path.display().to_string()),
            // Reading it will fail and say why.
            Err(_) => return Ok(()),
        },
        Source::Stdin => match stdin_metadata() {
            // Only a regular file redirected to stdin can be the rejects file; a pipe cannot.
            Some(metadata) if metadata.is_file() => (metadata, stdin_name()),
            _ => return Ok(()),
        },
    };
    if (input.dev(), input.ino()) != (target.dev(), target.ino()) {
        return Ok(());
    }
    Err(format!(
        "--rejects {} and the input {input_name} are the same file: rejected lines would be appended to the file \
         being read. Give --rejects another path (e.g. rejected.ndjson)",
        rejects.display()
    ))
}

/// `Err` when `rejects` names no file tally could append to.
fn usable(rejects: &Path) -> Result<(), String> {
    if rejects == Path::new("-") {
        // Rejected lines already go to stderr (the first 100) and stdout has
        // the summary: `-` as either would mix two formats in one stream.
        return Err("--rejects -: name a file for --rejects (e.g. --rejects rejected.ndjson); rejected lines are \
                    printed on stderr as well (the first 100 of them; the file keeps them all). A file named `-` \
                    is written as --rejects ./-"
            .to_string());
    }
    if rejects.is_dir() {
        return Err(format!(
            "--rejects {} is a directory: name a file, e.g. --rejects {}",
            rejects.display(),
            rejects.join("rejected.ndjson").display()
        ));
    }
    match rejects.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        Some(parent) if !parent.is_dir() => Err(format!(
            "--rejects {}: the directory {} does not exist; create it, or name a file in another one",
            rejects.display(),
            parent.display()
        )),
        _ => Ok(()),
    }
}

/// Opens `path` for appending (created if missing).
pub(super) fn open(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open --rejects file {}: {e}", path.display()))
}

/// What stdin is, through a duplicate of its descriptor (stdin itself stays open).
fn stdin_metadata() -> Option<Metadata> {
    let fd = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    File::from(fd).metadata().ok()
}

/// `stdin (-)`, with the file it is redirected from where Linux tells it.
fn stdin_name() -> String {
    match std::fs::read_link("/proc/self/fd/0") {
        Ok(path) => format!("stdin (-, redirected from {})", path.display()),
        Err(_) => "stdin (-)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_of_the_input_is_refused_and_other_files_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("events.ndjson");
        std::fs::write(&input, "{}\n").unwrap();
        let link = dir.path().join("link.ndjson");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let hard = dir.path().join("hard.ndjson");
        std::fs::hard_link(&input, &hard).unwrap();
        let dotted = dir.path().join(".").join("events.ndjson");
        let source = Source::File(input.clone());
        for rejects in [&input, &link, &hard, &dotted] {
            let error = check(&source, rejects).expect_err("the same file");
            assert!(error.contains(&rejects.display().to_string()) && error.contains("same file"), "{error}");
        }
        let other = dir.path().join("rejected.ndjson");
        assert_eq!(check(&source, &other), Ok(()), "a file that does not exist yet");
        std::fs::write(&other, "").unwrap();
        assert_eq!(check(&source, &other), Ok(()), "another existing file");
        let missing = Source::File(dir.path().join("missing.ndjson"));
        assert_eq!(check(&missing, &other), Ok(()), "a missing input is reported when it is read");
    }

    #[test]
    fn a_dash_a_directory_and_a_missing_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let source = Source::File(dir.path().join("events.ndjson"));
        let dash = check(&source, Path::new("-")).expect_err("-");
        assert!(dash.contains("name a file for --rejects") && dash.contains("./-"), "{dash}");
        assert_eq!(check(&source, Path::new("./-")), Ok(()), "a file named - when asked for so");
        let directory = check(&source, dir.path()).expect_err("a directory");
        assert!(directory.contains("is a directory") && directory.contains("rejected.ndjson"), "{directory}");
        let nowhere = dir.path().join("no-such-dir").join("rejected.ndjson");
        let missing = check(&source, &nowhere).expect_err("no such directory");
        assert!(missing.contains("does not exist"), "{missing}");
        assert_eq!(check(&source, Path::new("rejected.ndjson")), Ok(()), "a bare name is in the working directory");
    }
}
