//! The streaming service's operational view: a snapshot the service loop refreshes about once a
//! second, rendered as Prometheus text, and the health answers. `serve` exposes them over HTTP
//! (`/metrics`, `/healthz`, `/readyz`) on a thread of its own, so a slow scraper never touches
//! the processing loop; the loop only swaps the snapshot under a mutex.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::latency::LatencyHistogram;
use crate::ingest::SourceCounts;

/// The loop is considered stuck when it has not refreshed the snapshot for this long.
const STALL_AFTER: Duration = Duration::from_secs(60);

/// What the service reports; refreshed by the loop, read by the HTTP thread.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    pub sources: BTreeMap<String, SourceCounts>,
    /// (category, severity) → alert records emitted.
    pub alerts: BTreeMap<(String, String), u64>,
    /// Alert records a silence kept out of the outputs.
    pub alerts_suppressed: u64,
    /// `topic:partition` → messages between the position processed and the partition's end.
    pub lag: BTreeMap<String, i64>,
    /// Followed file → bytes written to it and not yet processed.
    pub file_lag_bytes: BTreeMap<String, u64>,
    pub latency: LatencyHistogram,
    pub checkpoints: u64,
    pub seconds_since_checkpoint: f64,
    /// Bytes of the live checkpoints of the partitions this instance owns.
    pub state_bytes: u64,
    pub assigned_partitions: usize,
    /// The broker answered recently (no "all brokers down" since the last message or poll).
    pub broker_reachable: bool,
    pub already_in_checkpoint: u64,
    /// What `/readyz` answers; set by each mode from what it needs to do its work.
    pub readiness: Readiness,
}

/// Whether the service can do its work now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Readiness {
    /// No snapshot published yet: the state is being restored or the inputs opened.
    #[default]
    Starting,
    Ready,
    NotReady(String),
}

/// Shared between the loop (writer) and the HTTP thread (reader).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Mutex<(MetricsSnapshot, Instant)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Arc::new(Mutex::new((MetricsSnapshot::default(), Instant::now()))),
        }
    }
}

impl Metrics {
    pub fn publish(&self, snapshot: MetricsSnapshot) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *g = (snapshot, Instant::now());
    }

    fn read(&self) -> (MetricsSnapshot, Duration) {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (g.0.clone(), g.1.elapsed())
    }

    /// (status, body) for a request path.
    pub fn answer(&self, path: &str) -> (u16, String) {
        let (snapshot, age) = self.read();
        match path {
            "/metrics" => (200, render(&snapshot, age)),
            "/healthz" if age <= STALL_AFTER => (200, "ok\n".into()),
            "/healthz" => (
                503,
                format!("processing loop silent for {} s\n", age.as_secs()),
            ),
            "/readyz" => match snapshot.readiness {
                Readiness::Ready => (200, "ready\n".into()),
                Readiness::Starting => (503, "starting\n".into()),
                Readiness::NotReady(why) => (503, format!("{why}\n")),
            },
            _ => (404, "not found: try /metrics, /healthz or /readyz\n".into()),
        }
    }
}

/// Prometheus label values: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Latency histogram bounds reported, in seconds (cumulative buckets, as Prometheus expects).
const LATENCY_BOUNDS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub fn render(s: &MetricsSnapshot, age: Duration) -> String {
    let mut out = String::new();
    let counter = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    };
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    type Field = fn(&SourceCounts) -> u64;
    let per_source: [(&str, &str, Field); 5] = [
        (
            "scopewatch_records_read_total",
            "Records read per source (topic:partition, or followed file).",
            |c| c.read,
        ),
        (
            "scopewatch_records_accepted_total",
            "Records accepted as events.",
            |c| c.accepted,
        ),
        (
            "scopewatch_records_dead_lettered_total",
            "Records rejected to the dead-letter output.",
            |c| c.dead_lettered,
        ),
        (
            "scopewatch_records_skipped_total",
            "Valid records that are not events scopewatch uses.",
            |c| c.skipped,
        ),
        (
            "scopewatch_events_late_total",
            "Events later than the allowed lateness (dead-lettered, kept in counts).",
            |c| c.late,
        ),
    ];
    for (name, help, field) in per_source {
        counter(&mut out, name, help);
        for (source, c) in &s.sources {
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {}", label(source), field(c));
        }
    }
    counter(
        &mut out,
        "scopewatch_alerts_total",
        "Alert records emitted, by category and severity.",
    );
    for ((category, severity), n) in &s.alerts {
        let _ = writeln!(
            out,
            "scopewatch_alerts_total{{category=\"{}\",severity=\"{}\"}} {n}",
            label(category),
            label(severity)
        );
    }
    gauge(
        &mut out,
        "scopewatch_consumer_lag_messages",
        "Messages between the processed position and the partition's end.",
    );
    for (source, lag) in &s.lag {
        let _ = writeln!(
            out,
            "scopewatch_consumer_lag_messages{{source=\"{}\"}} {lag}",
            label(source)
        );
    }
    if !s.file_lag_bytes.is_empty() {
        gauge(
            &mut out,
            "scopewatch_file_lag_bytes",
            "Bytes written to a followed file and not yet processed.",
        );
        for (source, lag) in &s.file_lag_bytes {
            let _ = writeln!(
                out,
                "scopewatch_file_lag_bytes{{source=\"{}\"}} {lag}",
                label(source)
            );
        }
    }
    let name = "scopewatch_processing_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Produced to Kafka (followed files: read) until given to the detection engine.\n# TYPE {name} histogram"
    );
    for bound in LATENCY_BOUNDS_S {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{bound}\"}} {}",
            s.latency.count_at_most_ms(bound * 1000.0)
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", s.latency.count());
    let _ = writeln!(out, "{name}_sum {:.3}", s.latency.sum_ms() / 1000.0);
    let _ = writeln!(out, "{name}_count {}", s.latency.count());
    let scalars: [(&str, &str, bool, String); 7] = [
        (
            "scopewatch_alerts_suppressed_total",
            "Alert records matched by a silence: kept in the history store, not emitted.",
            true,
            s.alerts_suppressed.to_string(),
        ),
        (
            "scopewatch_checkpoints_total",
            "Checkpoints written.",
            true,
            s.checkpoints.to_string(),
        ),
        (
            "scopewatch_checkpoint_age_seconds",
            "Seconds since the last checkpoint.",
            false,
            format!("{:.1}", s.seconds_since_checkpoint),
        ),
        (
            "scopewatch_state_bytes",
            "Bytes of the owned partitions' live checkpoints.",
            false,
            s.state_bytes.to_string(),
        ),
        (
            "scopewatch_assigned_partitions",
            "Partitions this instance owns.",
            false,
            s.assigned_partitions.to_string(),
        ),
        (
            "scopewatch_redelivered_skipped_total",
            "Re-delivered messages already covered by a checkpoint.",
            true,
            s.already_in_checkpoint.to_string(),
        ),
        (
            "scopewatch_snapshot_age_seconds",
            "Seconds since the processing loop refreshed these metrics.",
            false,
            format!("{:.1}", age.as_secs_f64()),
        ),
    ];
    for (name, help, is_counter, value) in scalars {
        if is_counter {
            counter(&mut out, name, help);
        } else {
            gauge(&mut out, name, help);
        }
        let _ = writeln!(out, "{name} {value}");
    }
    gauge(
        &mut out,
        "scopewatch_broker_reachable",
        "1 when the broker answered recently.",
    );
    let _ = writeln!(
        out,
        "scopewatch_broker_reachable {}",
        u8::from(s.broker_reachable)
    );
    gauge(
        &mut out,
        "scopewatch_build_info",
        "Always 1; the labels say which build is running.",
    );
    let _ = writeln!(
        out,
        "scopewatch_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    super::process_metrics::render(&mut out);
    out
}

/// Connections answered at once; more are closed unanswered until one ends. Each lives at most
/// [`REQUEST_DEADLINE`], so idle or slow clients cannot hold a slot for long.
const MAX_CONNECTIONS: usize = 64;
/// Connections from one address at once: one client holding many cannot fill every slot and
/// shut out the prober (which connects from its own address).
const MAX_PER_PEER: usize = 8;
/// Whole time a client has to send its request head.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// Request line and headers together; a probe's request is a few hundred bytes.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

/// Open connections, in all and per peer address.
#[derive(Default)]
struct Slots {
    open: usize,
    per_peer: HashMap<IpAddr, usize>,
}

impl Slots {
    fn take(&mut self, peer: IpAddr) -> bool {
        let mine = self.per_peer.get(&peer).copied().unwrap_or(0);
        if self.open >= MAX_CONNECTIONS || mine >= MAX_PER_PEER {
            return false;
        }
        self.open += 1;
        self.per_peer.insert(peer, mine + 1);
        true
    }

    fn give_back(&mut self, peer: IpAddr) {
        self.open = self.open.saturating_sub(1);
        if let Some(n) = self.per_peer.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&peer);
            }
        }
    }
}

/// Binds `addr` and answers requests until the process ends: an accept thread hands each
/// connection to a thread of its own (at most [`MAX_CONNECTIONS`], [`MAX_PER_PEER`] from one
/// address), so an idle, slow or oversized client never delays `/healthz` for another.
pub fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let slots = Arc::new(Mutex::new(Slots::default()));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let Ok(peer) = stream.peer_addr().map(|a| a.ip()) else {
                    continue;
                };
                if !slots.lock().unwrap_or_else(|p| p.into_inner()).take(peer) {
                    continue;
                }
                let (metrics, slot) = (metrics.clone(), Arc::clone(&slots));
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .spawn(move || {
                        if let Err(e) = answer_one(stream, &metrics) {
                            tracing::debug!("metrics request: {e}");
                        }
                        slot.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .give_back(peer);
                    });
                if spawned.is_err() {
                    slots
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .give_back(peer);
                }
            }
        })?;
    Ok(bound)
}

/// Reads the request head (up to the blank line) within the deadline and the byte limit.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request head not complete in time",
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&chunk[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head over the size limit",
            ));
        }
    }
}

fn answer_one(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let (status, body, path) = match read_head(&mut stream) {
        Ok(head) => {
            let head = String::from_utf8_lossy(&head);
            let request_line = head.lines().next().unwrap_or("");
            let mut parts = request_line.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let path = path.split('?').next().unwrap_or(path).to_string();
            let (status, body) = if method == "GET" {
                metrics.answer(&path)
            } else {
                (405, "only GET\n".into())
            };
            (status, body, path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            (431, "request head too large\n".into(), String::new())
        }
        Err(e) => return Err(e),
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let content_type = if path == "/metrics" {
        "text/plain; version=0.0.4"
    } else {
        "text/plain"
    };
    write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> MetricsSnapshot {
        let mut c = SourceCounts::new("scopewatch.access:0");
        c.record_accept();
        c.record_accept();
        let mut s = MetricsSnapshot {
            assigned_partitions: 2,
            broker_reachable: true,
            checkpoints: 3,
            readiness: Readiness::Ready,
            ..MetricsSnapshot::default()
        };
        s.sources.insert(c.source.clone(), c);
        s.alerts.insert(("scope_creep".into(), "high".into()), 4);
        s.lag.insert("scopewatch.access:0".into(), 17);
        s.latency.record_ms(20);
        s.latency.record_ms(3000);
        s
    }

    #[test]
    fn prometheus_text_carries_counts_alerts_lag_and_latency() {
        let text = render(&snapshot(), Duration::from_secs(1));
        for line in [
            "scopewatch_records_accepted_total{source=\"scopewatch.access:0\"} 2",
            "scopewatch_alerts_total{category=\"scope_creep\",severity=\"high\"} 4",
            "scopewatch_consumer_lag_messages{source=\"scopewatch.access:0\"} 17",
            "scopewatch_processing_latency_seconds_bucket{le=\"0.025\"} 1",
            "scopewatch_processing_latency_seconds_bucket{le=\"2.5\"} 1",
            "scopewatch_processing_latency_seconds_bucket{le=\"5\"} 2",
            "scopewatch_processing_latency_seconds_count 2",
            "scopewatch_checkpoints_total 3",
            "# TYPE scopewatch_consumer_lag_messages gauge",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn health_and_readiness_follow_the_snapshot_over_http() {
        let metrics = Metrics::default();
        let addr = serve("127.0.0.1:0".parse().expect("addr"), metrics.clone()).expect("serve");
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
            let mut body = String::new();
            s.read_to_string(&mut body).expect("read");
            body
        };
        assert!(get("/healthz").starts_with("HTTP/1.1 200"));
        let not_ready = get("/readyz");
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        metrics.publish(snapshot());
        assert!(get("/readyz").starts_with("HTTP/1.1 200"));
        let m = get("/metrics");
        assert!(m.contains("scopewatch_assigned_partitions 2"), "{m}");
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
        metrics.publish(MetricsSnapshot {
            readiness: Readiness::NotReady("broker unreachable".into()),
            ..snapshot()
        });
        let down = get("/readyz");
        assert!(down.starts_with("HTTP/1.1 503"), "{down}");
        assert!(down.ends_with("broker unreachable\n"), "{down}");
        assert!(get("/metrics").contains("scopewatch_build_info{version="));
    }

    /// One address gets at most 8 slots; others still get theirs; a freed slot is reused.
    #[test]
    fn one_peer_cannot_take_every_slot() {
        let mut slots = Slots::default();
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        );
        for _ in 0..MAX_PER_PEER {
            assert!(slots.take(a));
        }
        assert!(!slots.take(a), "the 9th from one address is refused");
        assert!(slots.take(b), "another address still gets a slot");
        slots.give_back(a);
        assert!(slots.take(a));
        assert_eq!(slots.open, MAX_PER_PEER + 1);
    }

    /// Idle connections, a client trickling header lines and one sending an endless request
    /// line are all held open while a probe asks: it is answered at once, and the oversized
    /// request is refused instead of buffered.
    #[test]
    fn healthz_answers_while_idle_slow_and_oversized_clients_hold_connections() {
        let addr = serve("127.0.0.1:0".parse().expect("addr"), Metrics::default()).expect("serve");
        // All from 127.0.0.1, within its 8 connections: 5 idle, 1 slow, 1 oversized, the probe.
        let idle: Vec<TcpStream> = (0..5)
            .map(|_| TcpStream::connect(addr).expect("idle"))
            .collect();
        let mut slow = TcpStream::connect(addr).expect("slow");
        write!(slow, "GET /healthz HTTP/1.1\r\n").expect("slow start");
        let trickle = std::thread::spawn(move || {
            for _ in 0..5 {
                if write!(slow, "X-Slow: 1\r\n").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        let mut big = TcpStream::connect(addr).expect("big");
        let _ = big.write_all(&vec![b'A'; 64 * 1024]);
        let started = Instant::now();
        let mut probe = TcpStream::connect(addr).expect("probe");
        write!(probe, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
        let mut answer = String::new();
        probe.read_to_string(&mut answer).expect("read");
        let waited = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(waited < Duration::from_secs(1), "/healthz took {waited:?}");
        let mut refused = String::new();
        let _ = big.read_to_string(&mut refused);
        assert!(
            refused.is_empty() || refused.starts_with("HTTP/1.1 431"),
            "{refused}"
        );
        trickle.join().expect("trickle");
        drop(idle);
    }
}
