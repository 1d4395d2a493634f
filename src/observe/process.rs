//! The process's CPU time and resident memory, read from `/proc/self` when
//! Prometheus scrapes (Linux; elsewhere the two series are absent).

use crate::metric_names as names;

/// Sets the process gauges from `/proc/self/stat`.
pub fn publish() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let Some((cpu_seconds, rss_pages)) = parse_stat(&stat) else {
        return;
    };
    // Linux reports CPU time in clock ticks (USER_HZ, 100 on every
    // mainstream kernel) and memory in pages (4 KiB on x86_64 and arm64).
    // A float, so a gauge (the metrics crate's counters are whole numbers);
    // it only grows, so rate() reads it like a counter.
    metrics::gauge!(names::PROCESS_CPU).set(cpu_seconds);
    metrics::gauge!(names::PROCESS_RSS).set(rss_pages as f64 * 4096.0);
}

/// CPU seconds (user + system) and resident pages from a `/proc/PID/stat`
/// line: fields 14, 15 and 24, counted after the `)` that ends the command
/// name (which may itself hold spaces).
fn parse_stat(stat: &str) -> Option<(f64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `after_name` starts at field 3 (the state).
    let ticks = |index: usize| fields.get(index - 3)?.parse::<u64>().ok();
    let cpu_ticks = ticks(14)? + ticks(15)?;
    Some((cpu_ticks as f64 / 100.0, ticks(24)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_and_rss_after_a_command_name_with_spaces() {
        let stat = "4242 (dynamo cdc) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 \
                    1000 300000000 2560 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((3.0, 2560)));
    }
}
