//! A container's log, in docker's `json-file` format: one JSON object a line, with the
//! text, the stream it came on and when, to the nanosecond.
//!
//! ```text
//! {"log":"listening on :80\n","stream":"stderr","time":"2026-12-07T21:45:03.120443113Z"}
//! ```
//!
//! The monitor cuts what the container writes into lines; a line longer than
//! [`MAX_LINE`] is written in parts, as docker does, so a container that never writes a
//! newline cannot make the monitor hold its output without bound.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// The longest piece of a line one log entry holds (docker's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// Which of the container's streams a line came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Its stdout (and a terminal's output).
    Stdout,
    /// Its stderr.
    Stderr,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The text, with its newline.
    pub log: String,
    /// Where it came from.
    pub stream: Stream,
    /// When, as RFC 3339 with nanoseconds.
    pub time: String,
}

// ANCHOR: log_writer
/// Cuts one stream's bytes into lines and appends each to the log as an [`Entry`].
#[derive(Debug)]
pub struct LineWriter {
    stream: Stream,
    pending: Vec<u8>,
}

impl LineWriter {
    /// A writer for `stream`.
    pub fn new(stream: Stream) -> LineWriter {
        LineWriter {
            stream,
            pending: Vec::new(),
        }
    }

    /// Take `bytes` the container wrote; append every whole line (or full piece) to
    /// `log`.
    pub fn push(&mut self, bytes: &[u8], log: &mut impl Write) -> io::Result<()> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self
            .pending
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| i + 1)
            .or((self.pending.len() >= MAX_LINE).then_some(MAX_LINE))
        {
            let line: Vec<u8> = self.pending.drain(..end).collect();
            self.write(&line, log)?;
        }
        Ok(())
    }

    /// At the stream's end: append what is left, a last line without its newline.
    pub fn finish(&mut self, log: &mut impl Write) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let rest = std::mem::take(&mut self.pending);
        self.write(&rest, log)
    }

    fn write(&self, line: &[u8], log: &mut impl Write) -> io::Result<()> {
        let entry = Entry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: self.stream,
            time: rfc3339_nanos(SystemTime::now()),
        };
        let mut json = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        json.push(b'\n');
        log.write_all(&json)
    }
}
// ANCHOR_END: log_writer

/// `time` as RFC 3339 in UTC with nanoseconds: `2026-12-07T21:45:03.120443113Z`.
pub fn rfc3339_nanos(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = crate::image::pack::rfc3339(since.as_secs());
    format!(
        "{}.{:09}Z",
        seconds.trim_end_matches('Z'),
        since.subsec_nanos()
    )
}

/// What `nutshell logs` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogOptions {
    /// Only the last this many lines.
    pub tail: Option<usize>,
    /// Each line after its time.
    pub timestamps: bool,
}

/// The entries of the log at `path` (none if there is no log yet); a line that is not an
/// entry (a log cut off by a full disk) is skipped.
pub fn read_entries(path: &Path) -> io::Result<Vec<Entry>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(parse(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn parse(bytes: &[u8]) -> Vec<Entry> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

/// Write `entries` as `logs` shows them: each on the stream it came on.
pub fn print(
    entries: &[Entry],
    options: LogOptions,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> io::Result<()> {
    let skip = options
        .tail
        .map_or(0, |tail| entries.len().saturating_sub(tail));
    for entry in &entries[skip..] {
        let out: &mut dyn Write = match entry.stream {
            Stream::Stdout => stdout,
            Stream::Stderr => stderr,
        };
        if options.timestamps {
            write!(out, "{} ", entry.time)?;
        }
        out.write_all(entry.log.as_bytes())?;
    }
    stdout.flush()?;
    stderr.flush()
}

/// `logs -f`: print the log at `path` as it grows, until `running` says the container
/// has ended and what it wrote last is printed. Polls, ten times a second, reading only
/// what was appended since.
pub fn follow(
    path: &Path,
    options: LogOptions,
    running: impl Fn() -> bool,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> io::Result<()> {
    let mut log: Option<std::fs::File> = None;
    // What was read past the last whole line: the monitor may be half-way through one.
    let mut unread = Vec::new();
    let mut shown = options;
    loop {
        // Asked before reading: whatever was written before the end is printed.
        let alive = running();
        if log.is_none() {
            log = match std::fs::File::open(path) {
                Ok(file) => Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            };
        }
        if let Some(file) = &mut log {
            std::io::Read::read_to_end(file, &mut unread)?;
        }
        let end = unread
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        print(&parse(&unread[..end]), shown, stdout, stderr)?;
        unread.drain(..end);
        // --tail is for what was there at the start.
        shown.tail = None;
        if !alive {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(log: &[u8]) -> Vec<Entry> {
        parse(log)
    }

    #[test]
    fn output_is_cut_into_json_file_lines_with_stream_and_nanosecond_time() {
        let mut log = Vec::new();
        let mut writer = LineWriter::new(Stream::Stderr);
        writer.push(b"GET / HTTP/1.1\nhal", &mut log).unwrap();
        assert_eq!(entries(&log).len(), 1, "half a line waits");
        writer.push(b"f\n", &mut log).unwrap();
        writer.push(b"no newline", &mut log).unwrap();
        writer.finish(&mut log).unwrap();
        let got = entries(&log);
        let texts: Vec<&str> = got.iter().map(|e| e.log.as_str()).collect();
        assert_eq!(texts, ["GET / HTTP/1.1\n", "half\n", "no newline"]);
        assert!(got.iter().all(|e| e.stream == Stream::Stderr));
        let line = String::from_utf8(log).unwrap();
        assert!(
            line.starts_with(r#"{"log":"GET / HTTP/1.1\n","stream":"stderr","time":""#),
            "{line}"
        );
        let time = &got[0].time;
        assert_eq!(time.len(), "2026-12-07T21:45:03.120443113Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[19] == b'.', "{time}");
    }

    #[test]
    fn a_line_without_end_is_logged_in_16k_pieces() {
        let mut log = Vec::new();
        let mut writer = LineWriter::new(Stream::Stdout);
        writer
            .push(&vec![b'x'; MAX_LINE * 2 + 5], &mut log)
            .unwrap();
        let got = entries(&log);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|e| e.log.len() == MAX_LINE));
    }

    #[test]
    fn logs_prints_each_stream_on_its_own_with_tail_and_timestamps() {
        let mut log = Vec::new();
        LineWriter::new(Stream::Stdout)
            .push(b"a\nb\n", &mut log)
            .unwrap();
        LineWriter::new(Stream::Stderr)
            .push(b"c\n", &mut log)
            .unwrap();
        let all = entries(&log);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        print(&all, LogOptions::default(), &mut out, &mut err).unwrap();
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (&b"a\nb\n"[..], &b"c\n"[..])
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let options = LogOptions {
            tail: Some(2),
            timestamps: true,
        };
        print(&all, options, &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.ends_with("Z b\n") && !out.contains(" a\n"), "{out}");
        assert!(String::from_utf8(err).unwrap().ends_with("Z c\n"));
    }

    #[test]
    fn follow_prints_what_was_written_until_the_container_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("container.log");
        let mut log = Vec::new();
        LineWriter::new(Stream::Stdout)
            .push(b"one\ntwo\n", &mut log)
            .unwrap();
        std::fs::write(&path, &log).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        follow(&path, LogOptions::default(), || false, &mut out, &mut err).unwrap();
        assert_eq!(out, b"one\ntwo\n");
    }
}
