//! Retrying the stream APIs' metadata calls (DescribeTable, DescribeStream,
//! ListShards, …) through throttling and server errors. Record reads retry
//! in the shard reader instead, where a failure stops only one shard.

use std::future::Future;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::source::SourceError;

/// How long metadata calls are retried: jittered backoff from 50 ms up to
/// `max_backoff`, for at most `window` since the first failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// How long after the first failure the last error is returned instead.
    pub window: Duration,
}

impl RetryPolicy {
    /// Retries of metadata calls: one minute, so that a service that stays
    /// unreachable (a wrong endpoint) still ends in a clear error.
    pub fn metadata(max_backoff: Duration) -> Self {
        Self {
            max_backoff,
            window: Duration::from_secs(60),
        }
    }

    /// Runs `call` until it succeeds, fails with an error retrying cannot
    /// fix, or keeps failing with retryable errors for longer than the
    /// window (then that error is returned). Each retry is logged.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(50), self.max_backoff);
        let started = tokio::time::Instant::now();
        loop {
            match call().await {
                Err(err) if err.is_retryable() && started.elapsed() < self.window => {
                    let delay = backoff.next_delay();
                    tracing::warn!(
                        attempt = backoff.attempts(),
                        retry_in_ms = delay.as_millis() as u64,
                        "{err}; retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn throttled() -> SourceError {
        SourceError::from_code("DescribeStream", "LimitExceededException", "m".into(), 400)
    }

    #[tokio::test(start_paused = true)]
    async fn retryable_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::metadata(Duration::from_secs(1));
        let result = policy
            .run(|| async {
                match calls.fetch_add(1, Ordering::Relaxed) {
                    0..=4 => Err(throttled()),
                    n => Ok(n),
                }
            })
            .await;
        assert_eq!(result.ok(), Some(5));
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_and_a_spent_window_end_the_retries() {
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy::metadata(Duration::from_secs(1));
        let fatal = policy
            .run(|| async {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(SourceError::from_code(
                    "DescribeTable",
                    "AccessDeniedException",
                    "m".into(),
                    400,
                ))
            })
            .await;
        assert!(matches!(fatal, Err(SourceError::Fatal { .. })));
        assert_eq!(calls.load(Ordering::Relaxed), 1);

        let spent = policy.run(|| async { Err::<(), _>(throttled()) }).await;
        assert!(spent.is_err_and(|err| err.is_throttling()));
    }
}
