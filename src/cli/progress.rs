//! A one-line progress display on stderr (only when stderr is a terminal): events, events/s
//! and bytes read, redrawn at most four times a second.

use std::collections::HashMap;
use std::time::{Duration, Instant};

const REDRAW: Duration = Duration::from_millis(250);

pub struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Instant,
    drawn: bool,
    /// The furthest offset reached in each source. Merged inputs interleave their batches,
    /// so each source counts once, at its furthest point.
    offsets: HashMap<String, u64>,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            started: now,
            last_draw: now,
            drawn: false,
            offsets: HashMap::new(),
        }
    }

    /// Called as events are processed (once per batch of about a thousand).
    pub fn tick(&mut self, events: u64, source: &str, offset: u64) {
        match self.offsets.get_mut(source) {
            Some(reached) => *reached = (*reached).max(offset),
            None => {
                self.offsets.insert(source.to_string(), offset);
            }
        }
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
        let mib = self.bytes_read() as f64 / (1024.0 * 1024.0);
        eprint!(
            "\r\x1b[K{events} events  {:.0} events/s  {mib:.1} MiB read",
            events as f64 / secs
        );
    }

    /// Bytes read so far over all sources.
    pub fn bytes_read(&self) -> u64 {
        self.offsets.values().sum()
    }

    /// Clears the line so the end-of-run report starts clean.
    pub fn done(&mut self) {
        if self.drawn {
            eprint!("\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    /// Two merged inputs whose batches alternate: each counts once, at its furthest offset
    /// (the display once summed every switch of source, 126 MiB shown as 1 651 MiB).
    #[test]
    fn interleaved_sources_count_once_each() {
        let mut p = Progress::new(false);
        let mut events = 0;
        for step in 1..=10u64 {
            events += 1000;
            p.tick(events, "a.ndjson", step * 100);
            p.tick(events, "b.ndjson", step * 10);
        }
        p.tick(events, "a.ndjson", 900);
        assert_eq!(p.bytes_read(), 1000 + 100);
    }
}
