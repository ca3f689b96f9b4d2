//! Small, bounded statistics kept per app: log-scale histograms (per-token volumes) and
//! exponentially weighted mean/variance per seasonal slot (hourly volumes).

/// Counts of values in power-of-two buckets: bucket 0 holds 0, bucket k holds [2^(k-1), 2^k).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogHistogram {
    pub buckets: Vec<u64>,
}

pub const HISTOGRAM_BUCKETS: usize = 40;

impl Default for LogHistogram {
    fn default() -> Self {
        LogHistogram {
            buckets: vec![0; HISTOGRAM_BUCKETS],
        }
    }
}

impl LogHistogram {
    fn bucket(value: u64) -> usize {
        ((64 - value.leading_zeros()) as usize).min(HISTOGRAM_BUCKETS - 1)
    }

    pub fn add(&mut self, value: u64) {
        if let Some(b) = self.buckets.get_mut(Self::bucket(value)) {
            *b += 1;
        }
    }

    /// This histogram and `other` together.
    pub fn merged(&self, other: &LogHistogram) -> LogHistogram {
        let mut buckets = self.buckets.clone();
        for (b, n) in buckets.iter_mut().zip(&other.buckets) {
            *b += n;
        }
        LogHistogram { buckets }
    }

    pub fn total(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// An estimate of the `q` quantile: the geometric middle of the bucket it falls in
    /// (2^(k-1) × √2), off by at most √2 either way where `quantile_upper` can be 2× over.
    pub fn quantile_mid(&self, q: f64) -> u64 {
        match self.quantile_upper(q) {
            0 => 0,
            u64::MAX => u64::MAX,
            top => ((top / 2 + 1) as f64 * std::f64::consts::SQRT_2) as u64,
        }
    }

    /// An upper bound of the `q` quantile (the top of the bucket it falls in).
    pub fn quantile_upper(&self, q: f64) -> u64 {
        let total = self.total();
        if total == 0 {
            return 0;
        }
        let target = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return if k == 0 { 0 } else { (1u64 << k) - 1 };
            }
        }
        u64::MAX
    }
}

/// Exponentially weighted mean and variance of one seasonal slot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SlotStats {
    pub mean: f64,
    pub var: f64,
    /// Observations folded in.
    pub n: u32,
}

/// Weight of a new observation: about the last two to three weeks of a daily slot.
pub const EWMA_ALPHA: f64 = 0.1;

impl SlotStats {
    pub fn update(&mut self, value: f64) {
        if self.n == 0 {
            self.mean = value;
            self.var = 0.0;
        } else {
            let diff = value - self.mean;
            let incr = EWMA_ALPHA * diff;
            self.mean += incr;
            self.var = (1.0 - EWMA_ALPHA) * (self.var + diff * incr);
        }
        self.n = self.n.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = LogHistogram::default();
        for v in 1..=100 {
            h.add(v);
        }
        h.add(0);
        assert_eq!(h.total(), 101);
        assert_eq!(h.quantile_upper(0.5), 63);
        assert_eq!(h.quantile_upper(0.99), 127);
        assert_eq!(LogHistogram::default().quantile_upper(0.99), 0);
        // 63 sits in bucket [32, 64): its middle is 32 × √2.
        assert_eq!(h.quantile_mid(0.5), 45);
        assert_eq!(LogHistogram::default().quantile_mid(0.5), 0);
    }

    #[test]
    fn ewma_tracks_level_and_spread() {
        let mut s = SlotStats::default();
        for i in 0..200 {
            s.update(if i % 2 == 0 { 90.0 } else { 110.0 });
        }
        assert!((s.mean - 100.0).abs() < 2.0, "{}", s.mean);
        assert!(s.var > 50.0 && s.var < 150.0, "{}", s.var);
    }
}
