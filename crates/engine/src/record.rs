//! Session logs: the raw output stream, or an asciicast v2 recording that `asciinema play`
//! replays. Written on the reader's path (a page-cache write per chunk), rotated by size.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What a log file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The program's output bytes as they came (appended to an existing file).
    Raw,
    /// asciicast v2: a JSON header, then `[seconds, "o"|"i"|"r", data]` lines.
    Asciicast,
}

/// Where and how to log a session.
#[derive(Debug, Clone)]
pub struct LogSpec {
    /// The log file.
    pub path: PathBuf,
    /// Raw or asciicast.
    pub format: LogFormat,
    /// Rotate when the file would grow past this many bytes (0: never).
    pub max_size: u64,
    /// Rotated files kept beside the current one (`path.1` is the newest).
    pub max_files: usize,
}

/// An open session log.
pub struct Recorder {
    spec: LogSpec,
    file: File,
    written: u64,
    started: Instant,
    size: (u16, u16),
    /// Output bytes of a UTF-8 character split across chunks (asciicast events are strings).
    carry: Vec<u8>,
    /// Why logging stopped (a write failed: disk full): the session goes on without it.
    stopped: Option<String>,
    /// Whether `news` has given that out.
    told: bool,
}

/// Opens `path` for writing: created with mode 0600, never through a symbolic link.
fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    if truncate {
        opts.truncate(true);
    } else {
        opts.append(true);
    }
    opts.open(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ELOOP) => {
            io::Error::new(e.kind(), format!("{} is a symbolic link; refusing to follow it", path.display()))
        }
        _ => io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())),
    })
}

impl Recorder {
    /// Opens the log for a terminal of `rows` × `cols`.
    ///
    /// # Errors
    /// When the file cannot be created (missing directory, permissions, a symbolic link).
    pub fn open(spec: LogSpec, rows: u16, cols: u16) -> io::Result<Recorder> {
        let asciicast = spec.format == LogFormat::Asciicast;
        let file = open_private(&spec.path, asciicast)?;
        let written = file.metadata()?.len();
        let mut r = Recorder {
            spec,
            file,
            written,
            started: Instant::now(),
            size: (rows, cols),
            carry: Vec::new(),
            stopped: None,
            told: false,
        };
        if asciicast {
            r.header()?;
        }
        Ok(r)
    }

    fn header(&mut self) -> io::Result<()> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let (rows, cols) = self.size;
        let line = format!(
            "{{\"version\": 2, \"width\": {cols}, \"height\": {rows}, \"timestamp\": {now}, \"env\": {{\"TERM\": \"xterm-256color\"}}}}\n"
        );
        self.put(line.as_bytes())
    }

    /// Records output from the program.
    pub fn output(&mut self, bytes: &[u8]) {
        match self.spec.format {
            LogFormat::Raw => self.write(bytes),
            LogFormat::Asciicast => {
                let mut data = std::mem::take(&mut self.carry);
                data.extend_from_slice(bytes);
                let keep = incomplete_utf8_tail(&data);
                self.carry = data.split_off(data.len() - keep);
                if !data.is_empty() {
                    self.event("o", &String::from_utf8_lossy(&data));
                }
            }
        }
    }

    /// Records typed input (asciicast only; a raw log holds output only).
    pub fn input(&mut self, bytes: &[u8]) {
        if self.spec.format == LogFormat::Asciicast {
            self.event("i", &String::from_utf8_lossy(bytes));
        }
    }

    /// Records a terminal resize.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.size = (rows, cols);
        if self.spec.format == LogFormat::Asciicast {
            self.event("r", &format!("{cols}x{rows}"));
        }
    }

    fn event(&mut self, kind: &str, data: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let data = serde_json_string(data);
        self.write(format!("[{t:.6}, \"{kind}\", {data}]\n").as_bytes());
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.stopped.is_some() {
            return;
        }
        let result = self.rotate_if_needed(bytes.len() as u64).and_then(|()| self.put(bytes));
        if let Err(e) = result {
            let why = format!("session log {} stopped: {e}", self.spec.path.display());
            tracing::warn!("{why}");
            self.stopped = Some(why);
        }
    }

    /// Why the log stopped, once it has.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Why the log stopped, the first time it is asked after it did.
    pub fn news(&mut self) -> Option<String> {
        if self.told {
            return None;
        }
        self.told = self.stopped.is_some();
        self.stopped.clone()
    }

    /// Writes `bytes` whole or not at all: a write that fails part-way is cut back, so the log
    /// never ends in half an event.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Err(e) = self.file.write_all(bytes) {
            let _ = self.file.set_len(self.written);
            return Err(e);
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn rotate_if_needed(&mut self, incoming: u64) -> io::Result<()> {
        if self.spec.max_size == 0 || self.written == 0 || self.written + incoming <= self.spec.max_size {
            return Ok(());
        }
        let name = |n: usize| PathBuf::from(format!("{}.{n}", self.spec.path.display()));
        if self.spec.max_files == 0 {
            std::fs::remove_file(&self.spec.path)?;
        } else {
            for n in (1..self.spec.max_files).rev() {
                let _ = std::fs::rename(name(n), name(n + 1));
            }
            std::fs::rename(&self.spec.path, name(1))?;
        }
        self.file = open_private(&self.spec.path, true)?;
        self.written = 0;
        if self.spec.format == LogFormat::Asciicast {
            // Each file plays on its own.
            self.header()?;
        }
        Ok(())
    }
}

/// How many bytes at the end of `data` start a UTF-8 character that is not complete yet.
fn incomplete_utf8_tail(data: &[u8]) -> usize {
    for back in 1..=3.min(data.len()) {
        let b = data[data.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: look further back for the lead byte
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// `s` as a JSON string literal.
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_characters_wait_for_their_end() {
        assert_eq!(incomplete_utf8_tail(b"ab"), 0);
        assert_eq!(incomplete_utf8_tail(&"é".as_bytes()[..1]), 1);
        assert_eq!(incomplete_utf8_tail("é".as_bytes()), 0);
        assert_eq!(incomplete_utf8_tail(&"😀".as_bytes()[..3]), 3);
    }

    #[test]
    fn json_strings_escape_control_characters() {
        assert_eq!(serde_json_string("a\"b\\\n\x1b"), r#""a\"b\\\n\u001b""#);
    }

    #[test]
    fn asciicast_events_never_split_a_character() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let spec = LogSpec { path: path.clone(), format: LogFormat::Asciicast, max_size: 0, max_files: 0 };
        let mut r = Recorder::open(spec, 24, 80).unwrap();
        let bytes = "h\u{e9}".as_bytes();
        r.output(&bytes[..2]);
        r.output(&bytes[2..]);
        r.input(b"ls\r");
        r.resize(30, 100);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("{\"version\": 2, \"width\": 80, \"height\": 24"));
        assert!(lines[1].ends_with(", \"o\", \"h\"]"), "{}", lines[1]);
        assert!(lines[2].ends_with(", \"o\", \"\u{e9}\"]"), "{}", lines[2]);
        assert!(lines[3].ends_with(", \"i\", \"ls\\r\"]"), "{}", lines[3]);
        assert!(lines[4].ends_with(", \"r\", \"100x30\"]"), "{}", lines[4]);
    }

    #[test]
    fn rotation_keeps_max_files_each_with_a_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.cast");
        let spec = LogSpec { path: path.clone(), format: LogFormat::Asciicast, max_size: 1000, max_files: 2 };
        let mut r = Recorder::open(spec, 24, 80).unwrap();
        for _ in 0..100 {
            r.output(b"0123456789012345678901234567890123456789\r\n");
        }
        let name = |n: usize| format!("{}.{n}", path.display());
        for file in [path.display().to_string(), name(1), name(2)] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.starts_with("{\"version\": 2"), "{file}");
            assert!(text.len() <= 1000, "{file} has {} bytes", text.len());
        }
        assert!(!std::path::Path::new(&name(3)).exists());
    }

    #[test]
    fn symbolic_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let spec = LogSpec { path: link, format: LogFormat::Raw, max_size: 0, max_files: 0 };
        let err = Recorder::open(spec, 24, 80).err().unwrap();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
