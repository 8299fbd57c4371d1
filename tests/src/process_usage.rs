//! What a process uses, read from `/proc`: resident memory, CPU time, open
//! files. Benchmarks and load tests measure the daemon with these.
//!
//! Invariant: every reading is of the process named by its pid at the time
//! of the call; a field that is missing panics with its name (a test
//! helper, not daemon code).

/// A field of /proc/PID/status, in KiB.
#[must_use]
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// Starts a new peak measurement: the kernel resets VmHWM to the current
/// resident size.
pub fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
}

/// CPU time (user and system, all threads) the process has used.
#[must_use]
pub fn cpu_time(pid: u32) -> std::time::Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // Linux reports these in USER_HZ: 100 per second on x86_64 and
    // aarch64, the machines these tests run on.
    std::time::Duration::from_millis(ticks * 10)
}

/// How many files the process has open.
#[must_use]
pub fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .count()
}
