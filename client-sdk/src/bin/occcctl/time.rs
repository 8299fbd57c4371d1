//! Times and durations for people: local time, to the second.
//!
//! Invariant: output never depends on anything but the timestamp and the
//! machine's time zone (TZ or /etc/localtime); a timestamp out of range
//! prints as its raw number, never a panic.

use chrono::{Local, TimeZone};

/// `at_unix_ms` as local time, e.g. `2026-12-03 14:05:09 +01:00`.
pub fn format_unix_ms(at_unix_ms: i64) -> String {
    match Local.timestamp_millis_opt(at_unix_ms) {
        chrono::LocalResult::Single(time) | chrono::LocalResult::Ambiguous(time, _) => {
            time.format("%Y-%m-%d %H:%M:%S %:z").to_string()
        }
        chrono::LocalResult::None => format!("{at_unix_ms} (unix ms)"),
    }
}

/// A duration in seconds as `3d 4h 5m`, `4h 5m 6s`, `5m 6s` or `6s`.
pub fn human_duration(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m {seconds}s"),
        _ => format!("{days}d {hours}h {minutes}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_read_well() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m 5s");
        assert_eq!(human_duration(3_725), "1h 2m 5s");
        assert_eq!(human_duration(90_061), "1d 1h 1m");
        assert!(
            format_unix_ms(0).starts_with("1970-01-01")
                || format_unix_ms(0).starts_with("1969-12-31")
        );
        assert!(format_unix_ms(i64::MAX).contains("unix ms"));
    }
}
