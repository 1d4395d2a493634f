//! A simulated fleet over an in-memory lease table with conditional writes
//! (owner and counter checked, as DynamoDB's condition expressions do), an
//! injected clock and seeded shuffling: the balancing rules must spread
//! leases within ±1, fail over dead workers, absorb a joining worker within
//! a minute, and not thrash.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::balance::{plan, BalanceSettings, ExpiryWatch, LeaseView};

const DURATION: Duration = Duration::from_secs(10);
const RENEW_MS: u64 = 3_333;
/// Workers that act at the same moment (same view, interleaved writes).
const RACING: usize = 5;
const SETTINGS: BalanceSettings = BalanceSettings {
    lease_duration: DURATION,
    max_steals: 5,
};

/// One conditional write a worker decided on.
struct Write {
    worker: String,
    key: String,
    seen: u64,
    take: bool,
}

#[derive(Debug, Clone)]
struct Row {
    owner: Option<String>,
    counter: u64,
}

struct Worker {
    id: String,
    alive: bool,
    watch: ExpiryWatch,
    beats: ExpiryWatch,
    cycles: u32,
}

struct Fleet {
    table: BTreeMap<String, Row>,
    heartbeats: BTreeMap<String, u64>,
    workers: Vec<Worker>,
    now_ms: u64,
    rng: fastrand::Rng,
    owner_changes: HashMap<String, u32>,
}

impl Fleet {
    fn new(shards: usize, workers: usize, seed: u64) -> Self {
        let mut fleet = Fleet {
            table: (0..shards)
                .map(|i| {
                    (
                        format!("shard-{i:05}"),
                        Row {
                            owner: None,
                            counter: 0,
                        },
                    )
                })
                .collect(),
            heartbeats: BTreeMap::new(),
            workers: Vec::new(),
            now_ms: 0,
            rng: fastrand::Rng::with_seed(seed),
            owner_changes: HashMap::new(),
        };
        for _ in 0..workers {
            fleet.add_worker();
        }
        fleet
    }

    fn add_worker(&mut self) -> usize {
        let id = format!("worker-{:02}", self.workers.len());
        self.workers.push(Worker {
            id,
            alive: true,
            watch: ExpiryWatch::default(),
            beats: ExpiryWatch::default(),
            cycles: 0,
        });
        self.workers.len() - 1
    }

    /// One renew period. Workers act at their own moments (a random order),
    /// but in groups of [`RACING`] that read the same table and whose
    /// conditional writes land in a random interleaving: they race for free
    /// leases, and a renewal can lose to a steal.
    fn cycle(&mut self) {
        self.now_ms += RENEW_MS;
        let mut live: Vec<usize> = (0..self.workers.len())
            .filter(|i| self.workers[*i].alive)
            .collect();
        self.rng.shuffle(&mut live);
        for group in live.chunks(RACING) {
            let mut writes: Vec<Write> = Vec::new();
            for &index in group {
                let id = self.workers[index].id.clone();
                *self.heartbeats.entry(id).or_insert(0) += 1;
            }
            for &index in group {
                writes.extend(self.decide(index));
            }
            self.rng.shuffle(&mut writes);
            for write in writes {
                self.write(&write);
            }
        }
    }

    /// What worker `index` writes this cycle, from the table as it is now.
    fn decide(&mut self, index: usize) -> Vec<Write> {
        let now = self.now_ms;
        let me = self.workers[index].id.clone();
        let leases: Vec<LeaseView> = self
            .table
            .iter()
            .map(|(key, row)| LeaseView {
                key: key.clone(),
                owner: row.owner.clone(),
                counter: row.counter,
                readable: true,
            })
            .collect();
        let beats: Vec<LeaseView> = self
            .heartbeats
            .iter()
            .map(|(worker, counter)| LeaseView {
                key: worker.clone(),
                owner: Some(worker.clone()),
                counter: *counter,
                readable: true,
            })
            .collect();
        let worker = &mut self.workers[index];
        worker.watch.observe(&leases, now);
        worker.beats.observe(&beats, now);
        worker.cycles += 1;
        let alive: Vec<String> = beats
            .iter()
            .filter(|b| !worker.beats.is_free(b, now, DURATION))
            .map(|b| b.key.clone())
            .collect();
        let mut decided = plan(&me, &alive, &leases, &worker.watch, now, SETTINGS);
        if worker.cycles == 1 {
            // The first look only learns who is there.
            decided.take.clear();
            decided.steal.clear();
        }
        let seen: HashMap<&str, u64> = leases.iter().map(|l| (l.key.as_str(), l.counter)).collect();
        let write = |key: &str, take: bool| Write {
            worker: me.clone(),
            key: key.to_owned(),
            seen: seen[key],
            take,
        };
        let mut writes: Vec<Write> = decided.renew.iter().map(|key| write(key, false)).collect();
        writes.extend(decided.take.iter().map(|key| write(key, true)));
        writes.extend(decided.steal.iter().map(|(key, _)| write(key, true)));
        writes
    }

    /// A conditional write: succeeds only if the counter is still `seen`
    /// (and, for a renewal, the writer still owns the lease).
    fn write(&mut self, write: &Write) {
        let Some(row) = self.table.get_mut(&write.key) else {
            return;
        };
        let owner_now = row.owner.as_deref() == Some(write.worker.as_str());
        if row.counter != write.seen || (!write.take && !owner_now) {
            return;
        }
        if write.take && !owner_now {
            *self.owner_changes.entry(write.key.clone()).or_insert(0) += 1;
        }
        row.owner = Some(write.worker.clone());
        row.counter += 1;
    }

    fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts: BTreeMap<String, usize> = self
            .workers
            .iter()
            .filter(|w| w.alive)
            .map(|w| (w.id.clone(), 0))
            .collect();
        for row in self.table.values() {
            if let Some(count) = row.owner.as_ref().and_then(|o| counts.get_mut(o)) {
                *count += 1;
            }
        }
        counts
    }

    /// Every lease held by a live worker, and counts within one of each other.
    fn balanced(&self) -> bool {
        let counts = self.counts();
        let owned: usize = counts.values().sum();
        let (min, max) = (counts.values().min(), counts.values().max());
        owned == self.table.len() && matches!((min, max), (Some(a), Some(b)) if b - a <= 1)
    }

    /// Cycles until balanced, at most `limit`.
    fn cycles_to_balance(&mut self, limit: u32) -> Option<u32> {
        (1..=limit).find(|_| {
            self.cycle();
            self.balanced()
        })
    }
}

const CYCLES_PER_DURATION: u32 = 3;

/// Prints the simulated time to balance (shown with `--no-capture`; the
/// numbers in docs/BENCHMARKS.md come from here).
fn report(what: &str, cycles: Option<u32>) {
    if let Some(cycles) = cycles {
        println!(
            "{what}: balanced after {cycles} renew periods ({:.1} s with a 10 s lease)",
            f64::from(cycles) * RENEW_MS as f64 / 1000.0
        );
    }
}

#[test]
fn cold_start_of_1000_shards_over_20_workers_balances_within_two_lease_periods() {
    for seed in 0..5 {
        let mut fleet = Fleet::new(1000, 20, seed);
        let cycles = fleet.cycles_to_balance(2 * CYCLES_PER_DURATION);
        assert!(
            cycles.is_some(),
            "seed {seed}: not balanced: {:?}",
            fleet.counts()
        );
        report("cold start, 1000 shards over 20 workers", cycles);
    }
}

#[test]
fn a_worker_joining_a_balanced_fleet_gets_its_share_within_a_minute_moving_each_shard_once() {
    let mut fleet = Fleet::new(1000, 20, 7);
    assert!(fleet.cycles_to_balance(10).is_some());
    fleet.owner_changes.clear();
    let newcomer = fleet.add_worker();
    let minute = u32::try_from(60_000 / RENEW_MS).unwrap_or(u32::MAX);
    let cycles = fleet.cycles_to_balance(minute);
    assert!(
        cycles.is_some(),
        "not balanced after a minute: {:?}",
        fleet.counts()
    );
    report("a 21st worker joins 1000 shards", cycles);
    let id = fleet.workers[newcomer].id.clone();
    assert!(fleet.counts()[&id] >= 47);
    assert!(
        fleet.owner_changes.values().all(|changes| *changes == 1),
        "a shard changed owner twice: {:?}",
        fleet
            .owner_changes
            .iter()
            .filter(|(_, c)| **c > 1)
            .collect::<Vec<_>>()
    );
    assert!(fleet.owner_changes.len() <= 48);
}

#[test]
fn a_dead_workers_leases_are_taken_after_the_lease_duration() {
    let mut fleet = Fleet::new(120, 4, 11);
    assert!(fleet.cycles_to_balance(10).is_some());
    fleet.workers[2].alive = false;
    // Nothing moves before the duration has passed.
    fleet.cycle();
    fleet.cycle();
    assert!(!fleet.balanced());
    let cycles = fleet.cycles_to_balance(3 * CYCLES_PER_DURATION);
    assert!(cycles.is_some(), "{:?}", fleet.counts());
    report(
        "a dead worker's leases taken over (after 2 renew periods)",
        cycles,
    );
    assert_eq!(
        fleet.counts().values().copied().collect::<Vec<_>>(),
        [40, 40, 40]
    );
}

#[test]
fn a_flapping_worker_does_not_make_the_fleet_thrash() {
    let mut fleet = Fleet::new(200, 5, 3);
    assert!(fleet.cycles_to_balance(10).is_some());
    fleet.owner_changes.clear();
    for round in 0..6 {
        // Away for one renew period (shorter than a lease), back again.
        fleet.workers[4].alive = round % 2 == 1;
        fleet.cycle();
    }
    fleet.workers[4].alive = true;
    for _ in 0..6 {
        fleet.cycle();
    }
    assert!(fleet.balanced(), "{:?}", fleet.counts());
    let moved: u32 = fleet.owner_changes.values().sum();
    assert_eq!(moved, 0, "leases moved although no lease expired");
}
