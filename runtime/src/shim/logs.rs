//! Container logs: one JSON object per line (Docker's `json-file` shape:
//! `{"time": RFC 3339 with nanoseconds, "stream": "stdout"|"stderr", "log": "text\n"}`),
//! size-capped with rotation (`<name>.log`, `<name>.log.1`, … oldest last).
//!
//! The shim writes; the daemon reads for `berth logs` (with `--since`, `--tail`,
//! `--follow`). Partial lines are buffered until a newline arrives or the buffer
//! reaches [`MAX_LINE`], so a line is never split between two JSON records unless it is
//! longer than that.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::types::LogSettings;

/// The longest line kept in one record; longer lines are split.
pub const MAX_LINE: usize = 16 * 1024;

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub time: String,
    pub stream: Stream,
    pub log: String,
}

impl LogEntry {
    /// The record's time, if it parses.
    pub fn timestamp(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.time)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Appends records to a container's log file, rotating it by size.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    settings: LogSettings,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    /// Opens (appending) or creates the log file.
    pub fn open(path: &Path, settings: LogSettings) -> io::Result<LogWriter> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path: path.to_owned(),
            file,
            size,
            settings,
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Records `data` read from `stream` at `now`.
    pub fn write(&mut self, stream: Stream, data: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.partial[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos + 1;
            self.record(stream, &buf[start..end], now)?;
            start = end;
        }
        while buf.len() - start >= MAX_LINE {
            self.record(stream, &buf[start..start + MAX_LINE], now)?;
            start += MAX_LINE;
        }
        buf.drain(..start);
        self.partial[idx] = buf;
        Ok(())
    }

    /// Writes out a buffered partial line (the stream ended without a newline).
    pub fn flush_partial(&mut self, stream: Stream, now: DateTime<Utc>) -> io::Result<()> {
        let buf = std::mem::take(&mut self.partial[stream as usize]);
        if !buf.is_empty() {
            self.record(stream, &buf, now)?;
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, line: &[u8], now: DateTime<Utc>) -> io::Result<()> {
        let entry = LogEntry {
            time: now.to_rfc3339_opts(SecondsFormat::Nanos, true),
            stream,
            log: String::from_utf8_lossy(line).into_owned(),
        };
        let mut bytes = serde_json::to_vec(&entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
        if self.size > 0 && self.size + bytes.len() as u64 > self.settings.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(&bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let n = self.settings.max_files;
        if n == 0 {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.size = 0;
            return Ok(());
        }
        let _ = fs::remove_file(rotated(&self.path, n));
        for i in (1..n).rev() {
            let _ = fs::rename(rotated(&self.path, i), rotated(&self.path, i + 1));
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// Which records to read.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only the last N records (after `since`).
    pub tail: Option<usize>,
}

/// Reads a container's records, oldest first, across rotated files. Also returns the
/// live file's length after reading, from which a follower continues.
pub fn read_log(path: &Path, query: &LogQuery) -> io::Result<(Vec<LogEntry>, u64)> {
    let mut files: Vec<PathBuf> = (1..=64)
        .map(|i| rotated(path, i))
        .filter(|p| p.exists())
        .collect();
    files.reverse();
    files.push(path.to_owned());
    let mut out = Vec::new();
    let mut end = 0;
    for f in &files {
        let file = match File::open(f) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut pos = 0u64;
        loop {
            line.clear();
            let n = reader.read_line(&mut line)?;
            // A record still being written has no newline yet: stop before it.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            pos += n as u64;
            if let Ok(e) = serde_json::from_str::<LogEntry>(&line)
                && query
                    .since
                    .is_none_or(|s| e.timestamp().is_none_or(|t| t >= s))
            {
                out.push(e);
            }
        }
        if f == path {
            end = pos;
        }
    }
    if let Some(n) = query.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok((out, end))
}

/// Reads records appended to the live file after byte `offset`. When the file was
/// rotated (it is now shorter than `offset`), reading restarts at its beginning.
pub fn read_log_from(path: &Path, offset: u64) -> io::Result<(Vec<LogEntry>, u64)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let start = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut pos = start;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        pos += n as u64;
        if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
            out.push(e);
        }
    }
    Ok((out, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn lines_become_records_and_partial_lines_wait_for_their_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.log");
        let mut w = LogWriter::open(&p, LogSettings::default()).unwrap();
        w.write(Stream::Stdout, b"hello\nwor", t(0)).unwrap();
        w.write(Stream::Stderr, b"oops\n", t(1)).unwrap();
        w.write(Stream::Stdout, b"ld\n", t(2)).unwrap();
        w.write(Stream::Stdout, b"no newline", t(3)).unwrap();
        w.flush_partial(Stream::Stdout, t(4)).unwrap();
        let (entries, end) = read_log(&p, &LogQuery::default()).unwrap();
        let logs: Vec<(&str, Stream)> =
            entries.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            logs,
            [
                ("hello\n", Stream::Stdout),
                ("oops\n", Stream::Stderr),
                ("world\n", Stream::Stdout),
                ("no newline", Stream::Stdout)
            ]
        );
        assert_eq!(end, fs::metadata(&p).unwrap().len());
        let (tail, _) = read_log(
            &p,
            &LogQuery {
                tail: Some(1),
                since: None,
            },
        )
        .unwrap();
        assert_eq!(tail[0].log, "no newline");
        let (since, _) = read_log(
            &p,
            &LogQuery {
                tail: None,
                since: Some(t(2)),
            },
        )
        .unwrap();
        assert_eq!(since.len(), 2);
    }

    #[test]
    fn files_rotate_at_the_size_cap_and_reading_spans_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(
            &p,
            LogSettings {
                max_bytes: 300,
                max_files: 2,
            },
        )
        .unwrap();
        for i in 0..40 {
            w.write(Stream::Stdout, format!("line {i:02}\n").as_bytes(), t(i))
                .unwrap();
        }
        assert!(fs::metadata(&p).unwrap().len() <= 300);
        assert!(rotated(&p, 1).exists() && rotated(&p, 2).exists() && !rotated(&p, 3).exists());
        let (entries, _) = read_log(&p, &LogQuery::default()).unwrap();
        assert_eq!(entries.last().unwrap().log, "line 39\n");
        let nums: Vec<u32> = entries
            .iter()
            .map(|e| e.log[5..7].parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    }

    #[test]
    fn very_long_lines_are_split_and_followers_continue_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut w = LogWriter::open(&p, LogSettings::default()).unwrap();
        w.write(Stream::Stdout, &vec![b'x'; MAX_LINE + 10], t(0))
            .unwrap();
        let (e, off) = read_log(&p, &LogQuery::default()).unwrap();
        assert_eq!(e.len(), 1);
        w.write(Stream::Stdout, b"\nnext\n", t(1)).unwrap();
        let (more, _) = read_log_from(&p, off).unwrap();
        assert_eq!(
            more.iter().map(|e| e.log.as_str()).collect::<Vec<_>>(),
            ["xxxxxxxxxx\n", "next\n"]
        );
    }
}
