//! What `/healthz` and `/readyz` answer from: what start-up still waits
//! for, which tables' sources are unreachable, and since when each sink has
//! been failing. Readers, sinks and the engine report here where things happen.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::metric_names as names;

/// The engine's health, shared by everything that reports to it.
#[derive(Debug)]
pub struct Health {
    /// What start-up waits for; `None` once it is done.
    starting: Mutex<Option<String>>,
    unreachable: Mutex<BTreeMap<String, String>>,
    failing: Mutex<BTreeMap<String, Failing>>,
}

#[derive(Debug, Clone)]
struct Failing {
    since: Instant,
    budget: Duration,
    message: String,
}

/// Why the engine is not ready, one line per reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady(pub Vec<String>);

impl Default for Health {
    /// Starting, not yet waiting for anything in particular.
    fn default() -> Self {
        Self {
            starting: Mutex::new(Some("start-up".to_owned())),
            unreachable: Mutex::default(),
            failing: Mutex::default(),
        }
    }
}

impl Health {
    /// Start-up now waits for `what` (`describing table orders`,
    /// `connecting sink clickhouse`): `/readyz` answers `starting: <what>`
    /// until the next step or [`Health::mark_started`].
    pub fn starting(&self, what: impl Into<String>) {
        let what = what.into();
        tracing::debug!("starting: {what}");
        *self.starting.lock().unwrap_or_else(PoisonError::into_inner) = Some(what);
    }

    /// Start-up is done: every table is described and every sink started.
    pub fn mark_started(&self) {
        *self.starting.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// `table`'s source answered (`Ok`) or failed (`Err` with why).
    pub fn source_reached(&self, table: &str, result: Result<(), String>) {
        let mut unreachable = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(()) => {
                unreachable.remove(table);
            }
            Err(why) => {
                unreachable.insert(table.to_owned(), why);
            }
        }
    }

    /// `sink`'s write failed (transiently); it may fail for `budget` before
    /// the engine reports itself unready.
    pub fn sink_failed(&self, sink: &str, budget: Duration, message: &str) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = failing.entry(sink.to_owned()).or_insert_with(|| Failing {
            since: Instant::now(),
            budget,
            message: String::new(),
        });
        entry.message = message.to_owned();
        let since_unix = SystemTime::now()
            .checked_sub(entry.since.elapsed())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!(names::SINK_FAILING_SINCE, "sink" => sink.to_owned()).set(since_unix);
    }

    /// `sink` wrote a batch.
    pub fn sink_succeeded(&self, sink: &str) {
        let removed = self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(sink);
        if removed.is_some() {
            metrics::gauge!(names::SINK_FAILING_SINCE, "sink" => sink.to_owned()).set(0.0);
        }
    }

    /// Ready, or why not.
    pub fn readiness(&self) -> Result<(), NotReady> {
        let mut reasons = Vec::new();
        if let Some(what) = self
            .starting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_deref()
        {
            reasons.push(format!("starting: {what}"));
        }
        for (table, why) in self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            reasons.push(format!("table {table}: source unreachable: {why}"));
        }
        for (sink, failing) in self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let for_how_long = failing.since.elapsed();
            if for_how_long >= failing.budget {
                reasons.push(format!(
                    "sink {sink}: failing for {}s (budget {}s): {}",
                    for_how_long.as_secs(),
                    failing.budget.as_secs(),
                    failing.message
                ));
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(NotReady(reasons))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_started_and_unready_while_a_sink_fails_past_its_budget() {
        let health = Health::default();
        assert_eq!(
            health.readiness(),
            Err(NotReady(vec!["starting: start-up".into()]))
        );
        health.starting("connecting sink ch");
        assert_eq!(
            health.readiness(),
            Err(NotReady(vec!["starting: connecting sink ch".into()]))
        );
        health.mark_started();
        assert_eq!(health.readiness(), Ok(()));
        health.sink_failed("pg", Duration::from_secs(60), "connection refused");
        assert_eq!(health.readiness(), Ok(()), "within its budget");
        health.sink_failed("ch", Duration::ZERO, "HTTP 503");
        let Err(NotReady(reasons)) = health.readiness() else {
            panic!("a sink past its budget must make the engine unready");
        };
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0].starts_with("sink ch: failing for"),
            "{reasons:?}"
        );
        health.sink_succeeded("ch");
        health.source_reached("orders", Err("connection refused".into()));
        assert_eq!(
            health.readiness(),
            Err(NotReady(vec![
                "table orders: source unreachable: connection refused".into()
            ]))
        );
        health.source_reached("orders", Ok(()));
        assert_eq!(health.readiness(), Ok(()));
    }
}
