//! Lease balancing decisions, pure: given what one worker sees of the lease
//! table (and its own clock), which leases it renews, takes and steals.
//!
//! Rules (every worker applies the same ones, so a fleet converges without
//! talking except through the table):
//!
//! - **Expiry is observed, not compared across clocks.** A lease is expired
//!   when its counter has not changed for a lease duration as measured by
//!   the observing worker's own clock since it first saw that counter (as
//!   KCL does); an owner renews every third of a duration.
//! - **Shares.** The live workers are this worker, every worker whose
//!   heartbeat is unexpired, and every owner of an unexpired lease. With `n` readable leases and `w` workers, the first
//!   `n mod w` workers in id order may hold `⌈n/w⌉`, the others `⌊n/w⌋`, so
//!   at rest every count is within one of every other.
//! - **Taking.** A worker below its share takes unowned and expired leases
//!   (in an order of its own, so that workers starting together rarely
//!   race for the same lease) until it reaches its share.
//! - **Stealing.** A worker still below its share takes live leases from
//!   the workers furthest above theirs, at most `max_steals` per renew
//!   period, never leaving a victim below its own share. A victim is above
//!   its share by definition, so a stolen lease is never stolen back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// One lease as a worker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseView {
    /// The lease key (`<stream>:<shard>` or the shard id).
    pub key: String,
    /// The current owner, if any.
    pub owner: Option<String>,
    /// The lease counter (grows with every renewal and every owner change).
    pub counter: u64,
    /// Whether the shard may be read now (its parents are finished).
    pub readable: bool,
}

/// What a worker should do this cycle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases this worker holds and keeps (renew them).
    pub renew: Vec<String>,
    /// Unowned or expired leases to take.
    pub take: Vec<String>,
    /// Live leases to steal, with their current owner.
    pub steal: Vec<(String, String)>,
}

/// Balancing settings.
#[derive(Debug, Clone, Copy)]
pub struct BalanceSettings {
    /// How long a lease lives without a renewal (the failover time).
    pub lease_duration: Duration,
    /// At most this many live leases stolen per cycle.
    pub max_steals: usize,
}

/// Remembers, per lease, the counter last seen and when (this worker's
/// clock, in milliseconds), to tell expired leases from live ones.
#[derive(Debug, Default)]
pub struct ExpiryWatch {
    seen: HashMap<String, (u64, u64)>,
}

impl ExpiryWatch {
    /// Records `leases` as seen at `now_ms`, and forgets leases that are gone.
    pub fn observe(&mut self, leases: &[LeaseView], now_ms: u64) {
        let mut next = HashMap::with_capacity(leases.len());
        for lease in leases {
            let since = match self.seen.get(&lease.key) {
                Some((counter, since)) if *counter == lease.counter => *since,
                _ => now_ms,
            };
            next.insert(lease.key.clone(), (lease.counter, since));
        }
        self.seen = next;
    }

    /// True when `lease` has an owner whose renewals stopped at least
    /// `duration` ago (or has no owner at all).
    pub fn is_free(&self, lease: &LeaseView, now_ms: u64, duration: Duration) -> bool {
        if lease.owner.is_none() {
            return true;
        }
        let since = self
            .seen
            .get(&lease.key)
            .map_or(now_ms, |(_, since)| *since);
        now_ms.saturating_sub(since) >= u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
    }
}

impl ExpiryWatch {
    /// When (this worker's clock, in milliseconds) the first live lease
    /// of another owner among `leases` expires unless it is renewed: the
    /// moment a take-over may happen, so that a worker looks at the table
    /// then rather than at its next renewal.
    pub fn next_expiry(
        &self,
        leases: &[LeaseView],
        me: &str,
        now_ms: u64,
        duration: Duration,
    ) -> Option<u64> {
        let duration_ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        leases
            .iter()
            .filter(|l| l.readable && l.owner.as_deref().is_some_and(|o| o != me))
            .filter(|l| !self.is_free(l, now_ms, duration))
            .filter_map(|l| self.seen.get(&l.key))
            .map(|(_, since)| since.saturating_add(duration_ms))
            .min()
    }
}

/// How many leases `worker` may hold: the first `n mod w` workers in id
/// order get one more than the rest.
fn share(worker: &str, workers: &[&str], readable: usize) -> usize {
    let count = workers.len().max(1);
    let base = readable / count;
    let extra = readable % count;
    let rank = workers.iter().position(|w| *w == worker).unwrap_or(count);
    base + usize::from(rank < extra)
}

/// A stable per-worker order over lease keys (FNV-1a of worker and key),
/// so that workers taking free leases at once mostly pick different ones.
fn preference(worker: &str, key: &str) -> u64 {
    worker
        .bytes()
        .chain([0])
        .chain(key.bytes())
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
}

/// A worker above its share: how far above, and its leases.
struct Victim<'a> {
    worker: &'a str,
    over: usize,
    leases: Vec<&'a LeaseView>,
}

/// Decides this cycle's renewals, takes and steals for `me`, given the
/// workers known to be alive (from their heartbeats; `me` and the owners
/// of live leases count as alive too).
pub fn plan(
    me: &str,
    alive: &[String],
    leases: &[LeaseView],
    watch: &ExpiryWatch,
    now_ms: u64,
    settings: BalanceSettings,
) -> Plan {
    let readable: Vec<&LeaseView> = leases.iter().filter(|l| l.readable).collect();
    let live = |lease: &LeaseView| !watch.is_free(lease, now_ms, settings.lease_duration);
    let mut held: BTreeMap<&str, Vec<&LeaseView>> = BTreeMap::new();
    held.insert(me, Vec::new());
    for worker in alive {
        held.entry(worker.as_str()).or_default();
    }
    for lease in readable.iter().filter(|l| live(l)) {
        if let Some(owner) = lease.owner.as_deref() {
            held.entry(owner).or_default().push(lease);
        }
    }
    let workers: Vec<&str> = held.keys().copied().collect();
    let my_share = share(me, &workers, readable.len());
    let mut plan = Plan {
        renew: held[me].iter().map(|l| l.key.clone()).collect(),
        ..Plan::default()
    };
    let mut count = plan.renew.len();
    let mut free: Vec<&LeaseView> = readable.iter().copied().filter(|l| !live(l)).collect();
    free.sort_by_key(|l| preference(me, &l.key));
    for lease in free {
        if count >= my_share {
            break;
        }
        plan.take.push(lease.key.clone());
        count += 1;
    }
    // Victims: workers above their share, with their leases in this
    // worker's order of preference (the last is taken first).
    let mut victims: Vec<Victim<'_>> = held
        .iter()
        .filter(|(worker, _)| **worker != me)
        .filter_map(|(worker, leases)| {
            let over = leases
                .len()
                .saturating_sub(share(worker, &workers, readable.len()));
            let mut leases = leases.clone();
            leases.sort_by_key(|l| std::cmp::Reverse(preference(me, &l.key)));
            (over > 0).then_some(Victim {
                worker,
                over,
                leases,
            })
        })
        .collect();
    while count < my_share && plan.steal.len() < settings.max_steals {
        let Some(victim) = victims
            .iter_mut()
            .filter(|v| v.over > 0)
            .max_by(|a, b| a.over.cmp(&b.over).then_with(|| b.worker.cmp(a.worker)))
        else {
            break;
        };
        let Some(lease) = victim.leases.pop() else {
            victim.over = 0;
            continue;
        };
        victim.over -= 1;
        plan.steal
            .push((lease.key.clone(), victim.worker.to_owned()));
        count += 1;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(key: &str, owner: Option<&str>, counter: u64) -> LeaseView {
        LeaseView {
            key: key.into(),
            owner: owner.map(str::to_owned),
            counter,
            readable: true,
        }
    }

    const SETTINGS: BalanceSettings = BalanceSettings {
        lease_duration: Duration::from_secs(10),
        max_steals: 2,
    };

    #[test]
    fn shares_differ_by_at_most_one() {
        let workers = ["a", "b", "c"];
        let shares: Vec<usize> = workers.iter().map(|w| share(w, &workers, 10)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(share("z", &["z"], 0), 0);
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let leases: Vec<_> = (0..5).map(|i| lease(&format!("s{i}"), None, 0)).collect();
        let watch = ExpiryWatch::default();
        let plan = plan("a", &[], &leases, &watch, 0, SETTINGS);
        assert_eq!(plan.take.len(), 5);
        assert!(plan.steal.is_empty());
    }

    #[test]
    fn expiry_needs_a_full_duration_without_renewal() {
        let mut leases = vec![lease("s0", Some("b"), 7)];
        let mut watch = ExpiryWatch::default();
        watch.observe(&leases, 1_000);
        assert!(plan("a", &[], &leases, &watch, 10_999, SETTINGS)
            .take
            .is_empty());
        // A renewal (counter change) restarts the wait.
        leases[0].counter = 8;
        watch.observe(&leases, 5_000);
        assert!(plan("a", &[], &leases, &watch, 11_000, SETTINGS)
            .take
            .is_empty());
        assert_eq!(
            plan("a", &[], &leases, &watch, 15_000, SETTINGS).take,
            ["s0"]
        );
    }

    #[test]
    fn the_next_expiry_is_a_duration_after_another_owners_counter_was_first_seen() {
        let leases = vec![
            lease("mine", Some("a"), 3),
            lease("b0", Some("b"), 7),
            lease("b1", Some("b"), 2),
            lease("free", None, 0),
        ];
        let mut watch = ExpiryWatch::default();
        watch.observe(&leases, 1_000);
        let mut later = leases.clone();
        later[1].counter = 8;
        watch.observe(&later, 4_000);
        // b1's counter is unchanged since 1 000, b0's since 4 000.
        assert_eq!(
            watch.next_expiry(&later, "a", 4_000, SETTINGS.lease_duration),
            Some(11_000)
        );
        // Once b1 has expired it is free, not expiring: b0 is next.
        assert_eq!(
            watch.next_expiry(&later, "a", 11_000, SETTINGS.lease_duration),
            Some(14_000)
        );
        // Every other owner's lease expired: nothing to wait for.
        assert_eq!(
            watch.next_expiry(&later, "a", 14_000, SETTINGS.lease_duration),
            None
        );
    }

    #[test]
    fn steals_are_bounded_and_come_from_the_busiest() {
        let mut leases: Vec<_> = (0..6)
            .map(|i| lease(&format!("b{i}"), Some("b"), 1))
            .collect();
        leases.extend((0..3).map(|i| lease(&format!("c{i}"), Some("c"), 1)));
        let mut watch = ExpiryWatch::default();
        watch.observe(&leases, 0);
        let plan = plan("a", &[], &leases, &watch, 1, SETTINGS);
        assert_eq!(plan.steal.len(), 2);
        assert!(plan.steal.iter().all(|(_, owner)| owner == "b"));
    }

    #[test]
    fn unreadable_leases_are_left_alone() {
        let mut child = lease("child", None, 0);
        child.readable = false;
        let plan = plan("a", &[], &[child], &ExpiryWatch::default(), 0, SETTINGS);
        assert_eq!(plan, Plan::default());
    }
}
