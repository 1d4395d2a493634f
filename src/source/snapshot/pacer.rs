//! A read budget shared by a snapshot's segments: at most N read capacity
//! units and/or M items per second, averaged page by page.
//!
//! Each page's cost is known only after it was read (its `ConsumedCapacity`
//! and item count), so the pacer charges it afterwards and makes the next
//! page wait until the budget has paid for the previous ones.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The budget; without limits it never waits.
#[derive(Debug)]
pub struct Pacer {
    rcu_per_second: Option<f64>,
    items_per_second: Option<f64>,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A budget of `rcu_per_second` and/or `items_per_second`.
    pub fn new(rcu_per_second: Option<f64>, items_per_second: Option<f64>) -> Self {
        Self {
            rcu_per_second,
            items_per_second,
            next_free: Mutex::new(None),
        }
    }

    /// How long a page of `capacity_units` and `items` takes of the budget.
    pub fn cost(&self, capacity_units: f64, items: usize) -> Duration {
        let by_rcu = self
            .rcu_per_second
            .map_or(0.0, |rate| capacity_units / rate);
        let by_items = self
            .items_per_second
            .map_or(0.0, |rate| items as f64 / rate);
        Duration::from_secs_f64(by_rcu.max(by_items).max(0.0))
    }

    /// Charges a page that was read.
    pub fn charge(&self, capacity_units: f64, items: usize) {
        let cost = self.cost(capacity_units, items);
        if cost.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut next = self
            .next_free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = next.map_or(now, |n| n.max(now));
        *next = Some(from + cost);
    }

    /// Waits until the pages read so far are paid for.
    pub async fn wait(&self) {
        let until = *self
            .next_free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tighter_budget_decides() {
        let pacer = Pacer::new(Some(100.0), Some(1000.0));
        assert_eq!(pacer.cost(50.0, 100), Duration::from_millis(500));
        assert_eq!(pacer.cost(1.0, 2000), Duration::from_secs(2));
        assert_eq!(Pacer::new(None, None).cost(1e9, 1 << 30), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn pages_wait_for_the_budget() {
        let pacer = Pacer::new(None, Some(100.0));
        let start = Instant::now();
        pacer.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.charge(0.0, 100);
        pacer.charge(0.0, 50);
        pacer.wait().await;
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
    }
}
