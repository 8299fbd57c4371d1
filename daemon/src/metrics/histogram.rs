//! A Prometheus histogram: cumulative bucket counts, sum and count.
//!
//! Invariant: bucket `i` counts every observation `<= bounds[i]`; `count`
//! counts all of them (the `+Inf` bucket); observations are never lost,
//! only placed.

/// Observations in fixed buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations `<= bounds[i]` (cumulative).
    cumulative: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    #[must_use]
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            cumulative: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, value: f64) {
        for (bound, bucket) in self.bounds.iter().zip(&mut self.cumulative) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` last.
    pub fn buckets(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        self.bounds
            .iter()
            .zip(&self.cumulative)
            .map(|(bound, count)| (bound.to_string(), *count))
            .chain(std::iter::once(("+Inf".to_owned(), self.count)))
    }

    /// Sum of observations.
    #[must_use]
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Number of observations.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_everything() {
        let mut histogram = Histogram::new(&[0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 7.0] {
            histogram.observe(value);
        }
        let buckets: Vec<(String, u64)> = histogram.buckets().collect();
        assert_eq!(
            buckets,
            vec![
                ("0.1".to_owned(), 2),
                ("1".to_owned(), 3),
                ("+Inf".to_owned(), 4)
            ]
        );
        assert_eq!(histogram.count(), 4);
        assert!((histogram.sum() - 7.65).abs() < 1e-9);
    }
}
