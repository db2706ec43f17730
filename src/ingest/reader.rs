//! Reading the input: a file or stdin, gunzipped when it starts with the
//! gzip magic bytes, split into lines of bounded length, parsed and grouped
//! into batches bounded in rows and bytes. Runs on a blocking thread; the
//! channel to the loader holds at most two batches, so memory stays bounded
//! whatever the size of the input. A UTF-8 byte order mark before the first
//! line is dropped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use tokio::sync::mpsc::Sender;

use super::document::{Row, TEXT_KEPT, parse};
use super::load::copy_text;

/// Where the documents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    /// The source a command-line argument names: `-` is stdin.
    pub fn from_argument(argument: &str) -> Source {
        if argument == "-" { Source::Stdin } else { Source::File(argument.into()) }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "-".to_string(),
        }
    }
}

/// A line that will not be loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
    /// The line as text (invalid UTF-8 replaced), cut at 64 KiB.
    pub text: String,
}

/// Consecutive lines, parsed.
#[derive(Debug, Default)]
pub struct Batch {
    pub rows: Vec<Row>,
    /// The rows as COPY text (`load::copy_text`), built here, while the
    /// loader waits on the server for the batch before.
    pub copy: Vec<u8>,
    pub rejects: Vec<Rejection>,
    /// Lines in this batch (rows + rejects).
    pub lines: u64,
    /// The number of the last line in this batch.
    pub last_line: u64,
}

/// Limits of the reader.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub batch_rows: usize,
    pub batch_bytes: usize,
    pub max_line_bytes: usize,
    pub skip_lines: u64,
}

/// How reading ended.
#[derive(Debug, Default)]
pub struct ReadEnd {
    pub skipped: u64,
    /// The input ended (rather than the loader hanging up or `stop`).
    pub reached_end: bool,
    /// An input error (unreadable file, corrupt gzip), after the batches sent.
    pub error: Option<String>,
}

/// Counts the bytes read from the underlying input (for progress).
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens the source; returns the reader and the input's size when known.
pub fn open(source: &Source, consumed: Arc<AtomicU64>) -> io::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = match source {
        Source::File(path) => {
            let file = File::open(path)?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size)
        }
        Source::Stdin => (Box::new(io::stdin()), None),
    };
    let mut buffered = BufReader::with_capacity(1 << 16, Counting { inner: raw, bytes: consumed });
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    let reader: Box<dyn BufRead + Send> = if gzip {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    };
    Ok((reader, size))
}

/// Reads lines, parses them and sends batches until the input ends, the
/// loader hangs up, or `stop` is set.
pub fn read(
    mut reader: Box<dyn BufRead + Send>,
    limits: Limits,
    batches: Sender<Batch>,
    stop: Arc<AtomicBool>,
) -> ReadEnd {
    let mut end = ReadEnd::default();
    let mut batch = Batch::default();
    let mut batch_bytes = 0;
    let mut buffer = Vec::new();
    let mut number = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return end;
        }
        buffer.clear();
        let mut length = match read_line(&mut reader, &mut buffer, limits.max_line_bytes) {
            Ok(Some(length)) => length,
            Ok(None) => {
                end.reached_end = true;
                break;
            }
            Err(e) => {
                end.error = Some(format!("reading stopped after line {number}: {e}"));
                break;
            }
        };
        number += 1;
        if number == 1 {
            strip_byte_order_mark(&mut buffer, &mut length);
        }
        if number <= limits.skip_lines {
            end.skipped += 1;
            continue;
        }
        let parsed = if length > limits.max_line_bytes {
            Err(format!(
                "line is {length} bytes, longer than the {} bytes allowed (--max-line-bytes)",
                limits.max_line_bytes
            ))
        } else {
            parse(number, &buffer)
        };
        match parsed {
            Ok(row) => {
                // The whole line, not only its properties: ids, names and
                // UTM values can be as long as the line allows; and the
                // line's text, kept in case PostgreSQL refuses the row; and
                // its COPY text, about as long again.
                batch_bytes += 2 * length.max(row.properties.len()) + row.text.len() + 192;
                batch.rows.push(row);
            }
            Err(reason) => {
                let text = String::from_utf8_lossy(&buffer[..buffer.len().min(TEXT_KEPT)]).into_owned();
                batch_bytes += text.len() + reason.len() + 128;
                batch.rejects.push(Rejection { line: number, reason, text });
            }
        }
        batch.lines += 1;
        batch.last_line = number;
        if batch.lines as usize >= limits.batch_rows || batch_bytes >= limits.batch_bytes {
            batch.copy = copy_text(&batch.rows);
            if batches.blocking_send(std::mem::take(&mut batch)).is_err() {
                return end;
            }
            batch_bytes = 0;
        }
    }
    if batch.lines > 0 {
        batch.copy = copy_text(&batch.rows);
        let _ = batches.blocking_send(batch);
    }
    end
}

/// Reads one line into `buffer` (without its newline), keeping at most
/// `max + 1` bytes of it; returns the line's full length, `None` at the end.
fn read_line(reader: &mut dyn BufRead, buffer: &mut Vec<u8>, max: usize) -> io::Result<Option<usize>> {
    let mut length = 0;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(any.then_some(length));
        }
        any = true;
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        let room = (max + 1).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        length += chunk.len();
        let consumed = done.unwrap_or(available.len());
        reader.consume(consumed);
        if done.is_some() {
            if buffer.last() == Some(&b'\r') {
                buffer.pop();
                length -= 1;
            }
            return Ok(Some(length));
        }
    }
}

/// Drops a UTF-8 byte order mark from the start of the first line: editors
/// and tools on Windows (PowerShell, Notepad) write one, and JSON parsers
/// refuse it, which would reject line 1 of an otherwise good file.
fn strip_byte_order_mark(line: &mut Vec<u8>, length: &mut usize) {
    const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];
    if line.starts_with(&BOM) {
        line.drain(..BOM.len());
        *length -= BOM.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_but_measured_and_crlf_is_stripped() {
        let input = b"short\r\n0123456789abcdef\nlast".to_vec();
        let mut reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(input));
        let mut buffer = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buffer, 8).unwrap(), Some(5));
        assert_eq!(buffer, b"short");
        buffer.clear();
        assert_eq!(read_line(&mut reader, &mut buffer, 8).unwrap(), Some(16));
        assert_eq!(buffer.len(), 9, "only max + 1 bytes are kept");
        buffer.clear();
        assert_eq!(read_line(&mut reader, &mut buffer, 8).unwrap(), Some(4));
        assert_eq!(buffer, b"last");
        buffer.clear();
        assert_eq!(read_line(&mut reader, &mut buffer, 8).unwrap(), None);
    }

    #[test]
    fn a_byte_order_mark_is_dropped_from_the_first_line_only() {
        let line = r#"{"event":"x","timestamp":"2026-03-03T10:00:00Z"}"#;
        let input = format!("\u{feff}{line}\n\u{feff}{line}\n");
        let reader: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(input.into_bytes()));
        let limits = Limits { batch_rows: 10, batch_bytes: 1 << 20, max_line_bytes: 1024, skip_lines: 0 };
        let (sender, mut batches) = tokio::sync::mpsc::channel(4);
        let end = read(reader, limits, sender, Arc::new(AtomicBool::new(false)));
        assert!(end.reached_end && end.error.is_none());
        let batch = batches.try_recv().unwrap();
        assert_eq!(batch.rows.len(), 1, "line 1 parses");
        assert_eq!(batch.rejects.len(), 1, "a mark inside the file is not the file's");
        assert_eq!(batch.rejects[0].line, 2);
    }
}
