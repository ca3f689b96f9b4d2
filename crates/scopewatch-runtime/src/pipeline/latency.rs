//! Processing latency of the streaming service: from the moment a record was produced to Kafka
//! (the message's create timestamp) to the moment its event was handed to the detection
//! engine — the delay an alert raised by that event carries. Kept as a fixed log-scale
//! histogram so recording costs nothing and memory does not grow with the stream.

/// Buckets per doubling: quantiles are exact to within 2^(1/4) ≈ 19 %.
const PER_DOUBLING: f64 = 4.0;
/// Covers 0 ms to 2^30 ms (12 days): anything later lands in the last bucket.
const BUCKETS: usize = 121;

#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    counts: [u64; BUCKETS],
    total: u64,
    sum_ms: u64,
    max_ms: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: [0; BUCKETS],
            total: 0,
            sum_ms: 0,
            max_ms: 0,
        }
    }
}

fn bucket_of(ms: u64) -> usize {
    // Bucket 0 holds 0 ms; bucket k ≥ 1 holds up to its upper bound 2^((k-1)/4) ms.
    if ms == 0 {
        return 0;
    }
    let k = ((ms as f64).log2() * PER_DOUBLING).ceil() as usize + 1;
    k.min(BUCKETS - 1)
}

fn upper_bound_ms(bucket: usize) -> f64 {
    if bucket == 0 {
        0.0
    } else {
        2f64.powf((bucket - 1) as f64 / PER_DOUBLING)
    }
}

impl LatencyHistogram {
    /// Records one latency. A negative one (clocks of producer and service disagree) counts as 0.
    pub fn record_ms(&mut self, ms: i64) {
        let ms = u64::try_from(ms).unwrap_or(0);
        self.counts[bucket_of(ms)] += 1;
        self.total += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
        self.max_ms = self.max_ms.max(ms);
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ms = self.sum_ms.saturating_add(other.sum_ms);
        self.max_ms = self.max_ms.max(other.max_ms);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn sum_ms(&self) -> f64 {
        self.sum_ms as f64
    }

    /// Records whose bucket lies wholly at or below `bound_ms` (a Prometheus cumulative bucket;
    /// a record in the bucket straddling the bound is counted in the next one up).
    pub fn count_at_most_ms(&self, bound_ms: f64) -> u64 {
        self.counts
            .iter()
            .enumerate()
            .take_while(|(k, _)| upper_bound_ms(*k) <= bound_ms)
            .map(|(_, c)| c)
            .sum()
    }

    pub fn max_ms(&self) -> u64 {
        self.max_ms
    }

    /// The latency (ms, the upper bound of its bucket, never above the maximum seen) that a
    /// fraction `q` of the records did not exceed; `None` when nothing was recorded.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (k, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound_ms(k).min(self.max_ms as f64));
            }
        }
        Some(self.max_ms as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=1000 {
            h.record_ms(ms);
        }
        let p50 = h.quantile_ms(0.5).expect("p50");
        let p99 = h.quantile_ms(0.99).expect("p99");
        assert!((500.0..=500.0 * 1.19).contains(&p50), "p50 {p50}");
        assert!(
            (990.0..=1000.0).contains(&p99),
            "p99 {p99} capped at the max"
        );
        assert_eq!(h.count(), 1000);
        assert_eq!(h.max_ms(), 1000);
    }

    #[test]
    fn merge_adds_counts_and_negative_latencies_count_as_zero() {
        let mut a = LatencyHistogram::default();
        a.record_ms(-5);
        let mut b = LatencyHistogram::default();
        b.record_ms(40);
        b.record_ms(40);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.quantile_ms(0.3), Some(0.0));
        let p = a.quantile_ms(0.9).expect("p90");
        assert!((40.0 / 1.19..=40.0).contains(&p), "{p}");
        assert_eq!(LatencyHistogram::default().quantile_ms(0.5), None);
    }
}
