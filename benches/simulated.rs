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
    let mut all: Vec<Event> = Vec::new();
    let mut seed = 1;
    while (all.len() as u64) < target {
        let sim = simulate(&SimConfig { seed, days: 28 });
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
