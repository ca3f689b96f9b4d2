//! Alerts to stdout (`-`) or a file. A service appends (`open`: a restarted service adds to the
//! file, duplicates share ids; a torn last record left by a killed run is cut off first; synced
//! to disk by `make_durable`). A batch run replaces (`create`: the file is created at the first
//! alert, so a run with nothing to report leaves none).

use std::io::{self, Write};

use super::append_file::AppendFile;
use super::output::Output;
use super::AlertSink;
use crate::alert::{write_alert, Alert, AlertFormat};

pub struct FileSink {
    format: AlertFormat,
    out: Box<dyn Write + Send>,
}

impl FileSink {
    /// Appends to `target` (opened now, so an unwritable path stops a service before it
    /// consumes anything), or writes to stdout for `-`.
    pub fn open(target: &str, format: AlertFormat) -> io::Result<FileSink> {
        let out: Box<dyn Write + Send> = if target == "-" {
            Box::new(Output::new("-"))
        } else {
            let mut file = AppendFile::new(target);
            file.open_now()?;
            Box::new(file)
        };
        Ok(FileSink { format, out })
    }

    /// Replaces `target` with this run's alerts (created at the first one), or writes to
    /// stdout for `-`.
    pub fn create(target: &str, format: AlertFormat) -> FileSink {
        FileSink {
            format,
            out: Box::new(Output::new(target)),
        }
    }
}

impl AlertSink for FileSink {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for a in alerts {
            write_alert(&mut self.out, a, self.format)?;
        }
        Ok(())
    }

    fn make_durable(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::test_alert;

    fn alert(client: &str) -> Alert {
        test_alert(client, 0)
    }

    fn lines(path: &std::path::Path) -> usize {
        std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
    }

    #[test]
    fn a_batch_run_replaces_the_file_and_a_service_appends_to_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.ndjson");
        let target = path.to_string_lossy().to_string();
        let mut quiet = FileSink::create(&target, AlertFormat::Ndjson);
        quiet.make_durable().expect("durable");
        assert!(!path.exists(), "no alert, no file");
        for _ in 0..2 {
            let mut sink = FileSink::create(&target, AlertFormat::Ndjson);
            sink.write(&[alert("a"), alert("b")]).expect("write");
            sink.make_durable().expect("durable");
        }
        assert_eq!(lines(&path), 2, "replaced, not appended");
        let mut service = FileSink::open(&target, AlertFormat::Ndjson).expect("open");
        service.write(&[alert("c")]).expect("write");
        service.make_durable().expect("durable");
        assert_eq!(lines(&path), 3, "appended");
    }
}
