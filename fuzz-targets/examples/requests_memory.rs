//! Replays a `requests` corpus over and over and prints the process's RSS
//! every 20,000 inputs (one daemon's life in the harness): RSS that keeps
//! climbing from life to life is a leak in occcd or the harness, RSS that
//! levels off is the allocator settling.
//!
//! `cargo run --release -p occcd-fuzz-targets --example requests_memory --
//! target/fuzz-corpus/requests 400000 [daemon-heap]` — `daemon-heap` first
//! sets the C allocator as occcd's `main` does
//! (`lifecycle::keep_heap_returnable`); without it glibc's defaults stay,
//! as under libFuzzer.

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)
                    .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
            })
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let folder = args
        .next()
        .unwrap_or_else(|| "target/fuzz-corpus/requests".into());
    let total: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(400_000);
    if args.next().is_some_and(|arg| arg == "daemon-heap") {
        let refused = occcd::lifecycle::keep_heap_returnable();
        println!("allocator set as occcd's main sets it (refused: {refused:?})");
    }
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&folder)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| std::fs::read(entry.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {folder}");
    println!("{} inputs from {folder}, {total} runs", inputs.len());
    let began = std::time::Instant::now();
    for run in 0..total {
        occcd_fuzz_targets::requests(&inputs[run % inputs.len()]);
        if (run + 1) % 20_000 == 0 {
            println!(
                "{:>8} runs  {:>6.0} s  RSS {:>7.1} MiB  peak {:>7.1} MiB  threads {}",
                run + 1,
                began.elapsed().as_secs_f64(),
                rss_kib("VmRSS:") as f64 / 1024.0,
                rss_kib("VmHWM:") as f64 / 1024.0,
                std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count),
            );
        }
    }
}
