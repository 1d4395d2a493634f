//! Reading the engine's metrics endpoint from tests: a free port, HTTP
//! GETs, and samples out of the Prometheus text format.

use std::time::Duration;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// GET `url`: the status and body, or `None` while nothing answers.
pub async fn get(url: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// The sum of the samples of `name` whose labels contain every one of
/// `labels` (`key="value"` pairs), in a Prometheus text exposition.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest),
            None => (series, ""),
        };
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
