//! Shared by the end-to-end benches: simulated input at any size, and the process's peak RSS
//! and CPU time.

#![allow(dead_code)]

use scopewatch::event::Event;
use scopewatch::simulate::{simulate, SimConfig};

/// This process's peak resident set (VmHWM), in MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// At least `target` events: whole simulations of successive seeds, each seed's apps and tokens
/// renamed so seeds are distinct apps (more apps, same per-app behaviour), merged in event-time
/// order as one log would be.
pub fn simulated_events(target: u64) -> Vec<Event> {
    simulated_events_over(target, 28)
}

/// As `simulated_events`, each seed simulating `days`: twice the days gives about twice the
/// events from the same apps (what a bench needs to show memory follows apps, not events).
pub fn simulated_events_over(target: u64, days: i64) -> Vec<Event> {
    let mut all: Vec<Event> = Vec::new();
    let mut seed = 1;
    while (all.len() as u64) < target {
        let sim = simulate(&SimConfig { seed, days });
        for mut e in sim.events {
            let suffix = format!("-s{seed}");
            match &mut e {
                Event::Token(t) => {
                    t.common.client_id.push_str(&suffix);
                    if let Some(id) = &mut t.token_id {
                        id.push_str(&suffix);
                    }
                }
                Event::Access(a) => {
                    a.common.client_id.push_str(&suffix);
                    if let Some(id) = &mut a.token_id {
                        id.push_str(&suffix);
                    }
                }
            }
            all.push(e);
        }
        seed += 1;
    }
    all.sort_by_key(Event::time);
    all
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (100 ticks/s):
/// set against wall time it tells whether the service or the broker is the limit.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start after the last ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(f64::NAN)
}

/// The size and pace of an end-to-end bench: full size under `cargo bench` (which passes
/// `--bench`), a quick smoke run under `cargo test`. `-- N` sets the event count and
/// `SCOPEWATCH_BENCH_RATE=N` the steady rate of the latency phase.
pub struct BenchArgs {
    pub events: u64,
    pub rate: u64,
    pub seconds: u64,
}

pub fn bench_args() -> BenchArgs {
    let benching = std::env::args().any(|a| a == "--bench");
    let events = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 1_000_000 } else { 20_000 });
    let rate = std::env::var("SCOPEWATCH_BENCH_RATE")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(if benching { 50_000 } else { 5_000 });
    BenchArgs {
        events,
        rate,
        seconds: if benching { 20 } else { 2 },
    }
}

/// Hands `send` the indexes of `total` items at `rate` per second, in 10 ms ticks; returns
/// the rate achieved.
pub fn at_steady_rate(
    total: usize,
    rate: u64,
    mut send: impl FnMut(std::ops::Range<usize>),
) -> f64 {
    let tick = std::time::Duration::from_millis(10);
    let per_tick = (rate / 100).max(1) as usize;
    let started = std::time::Instant::now();
    let mut next = started;
    let mut sent = 0usize;
    while sent < total {
        let end = (sent + per_tick).min(total);
        send(sent..end);
        sent = end;
        next += tick;
        if let Some(wait) = next.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    sent as f64 / started.elapsed().as_secs_f64()
}
