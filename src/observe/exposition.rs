//! Reading samples back out of the Prometheus text format (for `status`,
//! which asks a running engine for its lag, and for tests).

/// The sum of the samples of `name` whose labels include every one of
/// `labels` (`key="value"` pairs); `None` when there is no such sample.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = series.split_once('{').unwrap_or((series, ""));
        let wanted = labels
            .iter()
            .all(|(key, value)| label_text.contains(&format!("{key}=\"{value}\"")));
        if metric == name && wanted {
            if let Ok(value) = value.parse::<f64>() {
                found = Some(found.unwrap_or(0.0) + value);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_samples_with_the_wanted_labels() {
        let text = "# HELP x_total X.\n# TYPE x_total counter\n\
                    x_total{table=\"a\",shard=\"1\"} 3\nx_total{table=\"a\",shard=\"2\"} 4\n\
                    x_total{table=\"b\",shard=\"1\"} 5\nx_totals 9\n";
        assert_eq!(sample(text, "x_total", &[("table", "a")]), Some(7.0));
        assert_eq!(
            sample(text, "x_total", &[("table", "a"), ("shard", "2")]),
            Some(4.0)
        );
        assert_eq!(sample(text, "x_total", &[]), Some(12.0));
        assert_eq!(sample(text, "x_total", &[("table", "c")]), None);
    }
}
