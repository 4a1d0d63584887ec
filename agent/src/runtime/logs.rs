//! Container logs in the CRI log format (what the kubelet and `kubectl logs`
//! read): one line per record, `<RFC 3339 nano time> <stream> <P|F> <text>`,
//! where `P` marks a partial record (a line longer than the buffer, cut) and
//! `F` a full one. Files rotate by size: `N.log` moves to `N.log.1` (and
//! older ones up to the kept count) when it outgrows the limit.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufRead, Write},
    path::{Path, PathBuf},
    time::SystemTime,
};

/// Lines longer than this are written as partial records, as containerd's
/// CRI does (16 KiB).
pub const MAX_RECORD: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(&self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// RFC 3339 with nanoseconds in UTC, as CRI writes it.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Formats one record. Pure.
pub fn record(t: SystemTime, stream: Stream, partial: bool, text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 48);
    out.extend_from_slice(timestamp(t).as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(text);
    out.push(b'\n');
    out
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: String,
    pub stream: String,
    pub partial: bool,
    pub text: String,
}

/// Parses one line of a CRI log file.
pub fn parse(line: &str) -> Option<Record> {
    let mut it = line.splitn(4, ' ');
    let time = it.next()?.to_string();
    let stream = it.next()?.to_string();
    let tag = it.next()?;
    let text = it.next().unwrap_or("").to_string();
    Some(Record {
        time,
        stream,
        partial: tag == "P",
        text,
    })
}

/// Splits stream output into records, keeping an unfinished line for the
/// next chunk.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds a chunk; returns complete records as (partial, text).
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<(bool, Vec<u8>)> {
        let mut out = Vec::new();
        self.pending.extend_from_slice(chunk);
        loop {
            if let Some(i) = self.pending.iter().position(|b| *b == b'\n') {
                if i > MAX_RECORD {
                    let rest = self.pending.split_off(MAX_RECORD);
                    out.push((true, std::mem::replace(&mut self.pending, rest)));
                    continue;
                }
                let rest = self.pending.split_off(i + 1);
                let mut line = std::mem::replace(&mut self.pending, rest);
                line.pop();
                out.push((false, line));
            } else if self.pending.len() > MAX_RECORD {
                let rest = self.pending.split_off(MAX_RECORD);
                out.push((true, std::mem::replace(&mut self.pending, rest)));
            } else {
                return out;
            }
        }
    }

    /// What is left when the stream closes, as a final full record.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }
}

/// Appends records to a log file, rotating by size.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    keep: usize,
}

impl LogWriter {
    pub fn open(path: &Path, max_size: u64, keep: usize) -> io::Result<Self> {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            keep,
        })
    }

    pub fn write(&mut self, stream: Stream, partial: bool, text: &[u8]) -> io::Result<()> {
        let rec = record(SystemTime::now(), stream, partial, text);
        if self.size > 0 && self.size + rec.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&rec)?;
        self.size += rec.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let name = |i: usize| PathBuf::from(format!("{}.{i}", self.path.display()));
        let _ = fs::remove_file(name(self.keep.max(1)));
        for i in (1..self.keep.max(1)).rev() {
            let _ = fs::rename(name(i), name(i + 1));
        }
        fs::rename(&self.path, name(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// The records of a log file and its rotated predecessors, oldest first,
/// joined back into lines (partials merged), as `kubectl logs` prints them.
pub fn read_lines(path: &Path, keep: usize) -> io::Result<Vec<String>> {
    Ok(read_entries(path, keep)?
        .into_iter()
        .map(|(_, text)| text)
        .collect())
}

/// Like [`read_lines`], each line with the time of its first record.
pub fn read_entries(path: &Path, keep: usize) -> io::Result<Vec<(String, String)>> {
    let mut files: Vec<PathBuf> = (1..=keep.max(1))
        .rev()
        .map(|i| PathBuf::from(format!("{}.{i}", path.display())))
        .filter(|p| p.exists())
        .collect();
    files.push(path.to_path_buf());
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut time: Option<String> = None;
    for f in files {
        let Ok(file) = File::open(&f) else { continue };
        for line in io::BufReader::new(file).lines() {
            let line = line?;
            if let Some(r) = parse(&line) {
                let t = time.get_or_insert(r.time);
                cur.push_str(&r.text);
                if !r.partial {
                    out.push((std::mem::take(t), std::mem::take(&mut cur)));
                    time = None;
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push((time.unwrap_or_default(), cur));
    }
    Ok(out)
}

/// What `kubectl logs` asks for besides the container: the last
/// `tail` lines, only those written since `since` (an RFC 3339 nano time,
/// as records carry it), each prefixed with its time when `timestamps`,
/// at most `limit` bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub tail: Option<usize>,
    pub since: Option<String>,
    pub timestamps: bool,
    pub limit: Option<usize>,
}

/// The text of `entries` as `sel` selects it. Pure.
pub fn select(entries: &[(String, String)], sel: &Selection) -> String {
    let recent: Vec<&(String, String)> = entries
        .iter()
        .filter(|(t, _)| sel.since.as_ref().is_none_or(|s| t.as_str() >= s.as_str()))
        .collect();
    let skip = sel
        .tail
        .map(|n| recent.len().saturating_sub(n))
        .unwrap_or(0);
    let mut out = String::new();
    for (t, text) in &recent[skip..] {
        if sel.timestamps {
            out.push_str(t);
            out.push(' ');
        }
        out.push_str(text);
        out.push('\n');
    }
    if let Some(limit) = sel.limit
        && out.len() > limit
    {
        let mut end = limit;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

#[cfg(test)]
mod tests;
