//! Reading the engine's metrics endpoint from tests: a free port and HTTP
//! GETs, waits for an answer (samples come out with
//! `dynamo_cdc::observe::exposition::sample`).

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

/// Waits until `/metrics` satisfies `check`, and returns that exposition.
pub async fn wait_metrics(base: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
    wait_answer(&format!("{base}/metrics"), what, |status, body| {
        status == 200 && check(body)
    })
    .await
}

/// Waits until `url` answers `status`, and returns the body.
pub async fn wait_status(url: &str, status: u16) -> String {
    let what = format!("{status} from {url}");
    wait_answer(url, &what, |code, _| code == status).await
}

/// Waits until `url`'s answer satisfies `check`, and returns its body.
pub async fn wait_answer(url: &str, what: &str, check: impl Fn(u16, &str) -> bool) -> String {
    let matched = std::sync::Mutex::new(None);
    let (matched_ref, check) = (&matched, &check);
    super::wait_for_async(what, Duration::from_secs(60), move || async move {
        let Some((status, body)) = get(url).await else {
            return false;
        };
        let ok = check(status, &body);
        if ok {
            *matched_ref.lock().expect("lock") = Some(body);
        }
        ok
    })
    .await;
    matched.into_inner().expect("lock").unwrap_or_default()
}
