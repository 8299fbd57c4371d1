//! A small closed-loop load generator for benchmarks: N concurrent callers,
//! each issuing its next call when the previous one returns.
//!
//! Invariant: latencies are recorded per call and only inside the measured
//! window (after warm-up), so rates and percentiles describe the same calls.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::process_usage;

/// What one load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Successful calls in the measured window.
    pub calls: u64,
    /// Failed calls in the measured window.
    pub errors: u64,
    /// Length of the measured window.
    pub window: Duration,
    /// Latencies of the successful calls, sorted ascending.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    /// Successful calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }

    /// The `q`-quantile latency (`q` in 0..=1).
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[rank.min(self.latencies.len() - 1)]
    }
}

impl LoadReport {
    /// Joins the measurements of several runs of the same target.
    pub fn merge(reports: impl IntoIterator<Item = LoadReport>) -> LoadReport {
        let mut merged = LoadReport {
            calls: 0,
            errors: 0,
            window: Duration::ZERO,
            latencies: Vec::new(),
        };
        for report in reports {
            merged.calls += report.calls;
            merged.errors += report.errors;
            merged.window += report.window;
            merged.latencies.extend(report.latencies);
        }
        merged.latencies.sort_unstable();
        merged
    }
}

/// Runs `concurrency` callers for `warm_up + window`; `make_caller(i)` builds
/// caller `i`'s call function.
pub async fn run_load<C, F, Fut>(
    concurrency: usize,
    warm_up: Duration,
    window: Duration,
    make_caller: C,
) -> LoadReport
where
    C: Fn(usize) -> F,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let start = Instant::now();
    let measure_from = start + warm_up;
    let measure_until = measure_from + window;
    let mut tasks = Vec::with_capacity(concurrency);
    for index in 0..concurrency {
        let mut call = make_caller(index);
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0_u64);
            loop {
                let sent = Instant::now();
                if sent >= measure_until {
                    break;
                }
                let ok = call().await;
                if sent >= measure_from {
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut report = LoadReport {
        calls: 0,
        errors: 0,
        window,
        latencies: Vec::new(),
    };
    for task in tasks {
        let (latencies, errors) = task.await.expect("load task");
        report.errors += errors;
        report.latencies.extend(latencies);
    }
    report.calls = report.latencies.len() as u64;
    report.latencies.sort_unstable();
    report
}

/// The lowest of `samples` (0 when there are none).
#[must_use]
pub fn lowest(samples: &[u64]) -> u64 {
    samples.iter().copied().min().unwrap_or(0)
}

/// A process's resident memory (KiB) and open files, from `/proc`.
#[must_use]
pub fn footprint(pid: u32) -> (u64, usize) {
    (
        process_usage::status_kib(pid, "VmRSS:"),
        process_usage::open_files(pid),
    )
}
