//! A one-line progress display on stderr (only when stderr is a terminal): events, events/s
//! and bytes read, redrawn at most four times a second.

use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(250);

pub struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Instant,
    drawn: bool,
    /// Bytes of the sources already finished.
    bytes_done: u64,
    /// The current source and the offset reached in it.
    current_source: String,
    current_offset: u64,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last_draw: now,
            drawn: false,
            bytes_done: 0,
            current_source: String::new(),
            current_offset: 0,
        }
    }

    /// Called as events are processed (once per batch of about a thousand).
    pub fn tick(&mut self, events: u64, source: &str, offset: u64) {
        if source != self.current_source {
            self.bytes_done += self.current_offset;
            self.current_source = source.to_string();
        }
        self.current_offset = offset;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last_draw) < REDRAW {
            return;
        }
        self.last_draw = now;
        self.drawn = true;
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-9);
        let mib = (self.bytes_done + self.current_offset) as f64 / (1024.0 * 1024.0);
        eprint!(
            "\r\x1b[K{events} events  {:.0} events/s  {mib:.1} MiB read",
            events as f64 / secs
        );
    }

    /// Clears the line so the end-of-run report starts clean.
    pub fn done(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
        }
    }
}
