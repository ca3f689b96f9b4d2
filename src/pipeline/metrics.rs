//! The streaming service's operational view: a snapshot the service loop refreshes about once a
//! second, rendered as Prometheus text, and the health answers. `serve` exposes them over HTTP
//! (`/metrics`, `/healthz`, `/readyz`) on a thread of its own, so a slow scraper never touches
//! the processing loop; the loop only swaps the snapshot under a mutex.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
            "/readyz" if snapshot.broker_reachable && snapshot.assigned_partitions > 0 => {
                (200, "ready\n".into())
            }
            "/readyz" if !snapshot.broker_reachable => (503, "broker unreachable\n".into()),
            "/readyz" => (503, "no partitions assigned\n".into()),
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
    let scalars: [(&str, &str, bool, String); 6] = [
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
    out
}

/// Binds `addr` and answers requests on a thread of its own until the process ends.
pub fn serve(addr: SocketAddr, metrics: Metrics) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer_one(stream, &metrics) {
                    tracing::debug!("metrics request: {e}");
                }
            }
        })?;
    Ok(bound)
}

fn answer_one(stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers; nothing in them matters here.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or(path);
    let (status, body) = if method == "GET" {
        metrics.answer(path)
    } else {
        (405, "only GET\n".into())
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let content_type = if path == "/metrics" {
        "text/plain; version=0.0.4"
    } else {
        "text/plain"
    };
    let mut stream = stream;
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
    use std::io::Read;

    fn snapshot() -> MetricsSnapshot {
        let mut c = SourceCounts::new("scopewatch.access:0");
        c.record_accept();
        c.record_accept();
        let mut s = MetricsSnapshot {
            assigned_partitions: 2,
            broker_reachable: true,
            checkpoints: 3,
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
    }
}
