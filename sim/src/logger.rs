//! A `log` backend for the host server: one line per record, UTC timestamp,
//! to stderr and optionally appended to a file (the engine logs one line
//! per session event, with the session id, through the `log` facade).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

use crate::time::datetime_from_unix;

struct Logger {
    level: LevelFilter,
    file: Option<Mutex<File>>,
}

/// Formats one log line (without the newline).
pub fn format_line(now: SystemTime, record: &Record<'_>) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let stamp = match datetime_from_unix(d.as_secs() as i64) {
        Some(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            d.subsec_millis()
        ),
        None => "?".into(),
    };
    format!(
        "{stamp} {:<5} {}: {}",
        record.level(),
        record.target(),
        record.args()
    )
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut line = format_line(SystemTime::now(), record);
        line.push('\n');
        let _ = io::stderr().lock().write_all(line.as_bytes());
        if let Some(file) = &self.file {
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }

    fn flush(&self) {
        if let Some(file) = &self.file {
            if let Ok(mut f) = file.lock() {
                let _ = f.flush();
            }
        }
    }
}

/// Installs the logger: records up to `level` go to stderr and, when `file`
/// is given, are appended to it (created if missing).
pub fn init(level: LevelFilter, file: Option<&Path>) -> io::Result<()> {
    let file = match file {
        Some(p) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => None,
    };
    log::set_boxed_logger(Box::new(Logger { level, file }))
        .map_err(|e| io::Error::other(e.to_string()))?;
    log::set_max_level(level);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn line_has_utc_stamp_level_target_and_message() {
        let now = UNIX_EPOCH + Duration::from_millis(1_767_225_599_042);
        let line = format_line(
            now,
            &Record::builder()
                .args(format_args!("[3] USER test"))
                .level(log::Level::Info)
                .target("ftpd::server")
                .build(),
        );
        assert_eq!(
            line,
            "2025-12-31T23:59:59.042Z INFO  ftpd::server: [3] USER test"
        );
    }
}
