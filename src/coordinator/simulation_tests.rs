//! Randomised simulation of lineage + ordered acks + checkpoints over an
//! in-memory fake stream that splits and merges shards, with crashes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::SequenceNumber;

const SINKS: usize = 2;
const SHARDS: [&str; 4] = ["a", "b", "c", "d"];

/// a splits into b and c; b and c merge into d; d stays open.
struct FakeStream {
    nodes: Vec<ShardNode>,
    records: HashMap<&'static str, Vec<u64>>,
    closed: HashSet<&'static str>,
}

impl FakeStream {
    fn new() -> Self {
        let node = |id: &str, parents: &[&str]| ShardNode {
            id: id.into(),
            parents: parents.iter().map(|p| (*p).to_owned()).collect(),
        };
        Self {
            nodes: vec![
                node("a", &[]),
                node("b", &["a"]),
                node("c", &["a"]),
                node("d", &["b", "c"]),
            ],
            records: HashMap::from([
                ("a", (100..110).collect::<Vec<_>>()),
                ("b", (200..207).collect()),
                ("c", (210..215).collect()),
                ("d", (300..312).collect()),
            ]),
            closed: HashSet::from(["a", "b", "c"]),
        }
    }
}

fn seq(n: u64) -> SequenceNumber {
    SequenceNumber::parse(&n.to_string()).unwrap()
}

fn key(shard: &str) -> ShardKey {
    ShardKey {
        stream: Arc::from("arn:stream"),
        shard: Arc::from(shard),
    }
}

struct InFlight {
    handle: AckHandle,
    shard: &'static str,
    records: Vec<u64>,
    acked_by: [bool; SINKS],
}

/// One process lifetime: readers, sinks and the checkpoint writer, until a crash or the end.
struct Run<'a> {
    stream: &'a FakeStream,
    store: &'a mut HashMap<String, ShardCheckpoint>,
    delivered: &'a mut [BTreeSet<(&'static str, u64)>; SINKS],
    tracker: Arc<AckTracker>,
    readers: Vec<(&'static str, usize)>,
    drained: HashSet<&'static str>,
    in_flight: Vec<InFlight>,
    violations: Vec<String>,
}

impl Run<'_> {
    fn done(&self, shard: &str) -> bool {
        self.drained.contains(shard) || self.store.get(shard).is_some_and(|c| c.finished)
    }

    fn start_ready(&mut self) {
        let ready: Vec<&'static str> = ready_shards(
            &self.stream.nodes,
            |id| self.done(id),
            |id| self.readers.iter().any(|(r, _)| *r == id),
        )
        .into_iter()
        .filter_map(|id| SHARDS.iter().copied().find(|s| *s == id))
        .collect();
        for shard in ready {
            for parent in &self
                .stream
                .nodes
                .iter()
                .find(|n| n.id == shard)
                .unwrap()
                .parents
            {
                if !self.done(parent) {
                    self.violations
                        .push(format!("{shard} started before {parent} was done"));
                }
            }
            let checkpoint = self.store.get(shard).and_then(|c| c.sequence.clone());
            let all = &self.stream.records[shard];
            let next = all
                .iter()
                .position(|n| checkpoint.as_ref().is_none_or(|c| seq(*n) > *c))
                .unwrap_or(all.len());
            self.tracker
                .open_shard(key(shard), Arc::from("t"), checkpoint);
            self.readers.push((shard, next));
        }
    }

    fn read(&mut self, pick: usize, take: usize) {
        if self.readers.is_empty() {
            return;
        }
        let index = pick % self.readers.len();
        let (shard, next) = self.readers[index];
        let all = &self.stream.records[shard];
        let page: Vec<u64> = all.iter().skip(next).take(take).copied().collect();
        self.readers[index].1 += page.len();
        if let Some(last) = page.last() {
            let handle = self
                .tracker
                .register(&key(shard), seq(*last), SINKS, None)
                .unwrap();
            self.in_flight.push(InFlight {
                handle,
                shard,
                records: page,
                acked_by: [false; SINKS],
            });
        }
        if self.readers[index].1 == all.len() && self.stream.closed.contains(shard) {
            self.tracker.mark_drained(&key(shard));
            self.drained.insert(shard);
            self.readers.remove(index);
        }
    }

    fn ack(&mut self, pick: usize, sink: usize) {
        if self.in_flight.is_empty() {
            return;
        }
        let index = pick % self.in_flight.len();
        let chunk = &mut self.in_flight[index];
        if !chunk.acked_by[sink] {
            for n in &chunk.records {
                self.delivered[sink].insert((chunk.shard, *n));
            }
            chunk.acked_by[sink] = true;
            chunk.handle.ack().unwrap();
        }
        if chunk.acked_by.iter().all(|a| *a) {
            self.in_flight.remove(index);
        }
    }

    fn flush(&mut self) {
        for update in self.tracker.take_updates() {
            let entry = self.store.entry(update.key.shard.to_string()).or_default();
            if update.sequence.is_some() {
                entry.sequence = update.sequence;
            }
            entry.finished |= update.finished;
        }
        // Every stored checkpoint must be covered by every sink.
        for (shard, checkpoint) in self.store.iter() {
            let Some(cp) = &checkpoint.sequence else {
                continue;
            };
            for n in &self.stream.records[shard.as_str()] {
                if seq(*n) <= *cp
                    && self.delivered.iter().any(|d| {
                        !d.contains(&(SHARDS.iter().copied().find(|s| s == shard).unwrap(), *n))
                    })
                {
                    self.violations.push(format!(
                        "checkpoint {cp} of {shard} passed undelivered record {n}"
                    ));
                }
            }
        }
    }

    fn caught_up(&self) -> bool {
        self.in_flight.is_empty()
            && !self.tracker.has_updates()
            && self
                .readers
                .iter()
                .all(|(s, next)| *next == self.stream.records[s].len())
            && self.stream.closed.iter().all(|s| self.done(s))
    }
}

fn new_run<'a>(
    stream: &'a FakeStream,
    store: &'a mut HashMap<String, ShardCheckpoint>,
    delivered: &'a mut [BTreeSet<(&'static str, u64)>; SINKS],
) -> Run<'a> {
    Run {
        stream,
        store,
        delivered,
        tracker: AckTracker::new(),
        readers: Vec::new(),
        drained: HashSet::new(),
        in_flight: Vec::new(),
        violations: Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn checkpoints_never_pass_unacknowledged_records(
        lives in proptest::collection::vec(
            proptest::collection::vec((0u8..9, any::<u16>()), 0..80), 1..6)
    ) {
        let stream = FakeStream::new();
        let mut store = HashMap::new();
        let mut delivered: [BTreeSet<(&'static str, u64)>; SINKS] = Default::default();
        let mut violations = Vec::new();
        // Each life runs its random actions and then crashes, losing everything in memory.
        for actions in &lives {
            let mut run = new_run(&stream, &mut store, &mut delivered);
            for (kind, pick) in actions {
                run.start_ready();
                let pick = usize::from(*pick);
                match kind {
                    0..=3 => run.read(pick, pick / 7 % 4),
                    4..=6 => run.ack(pick, pick / 3 % SINKS),
                    _ => run.flush(),
                }
            }
            violations.append(&mut run.violations);
        }
        // A last life runs to the end without crashing.
        let mut run = new_run(&stream, &mut store, &mut delivered);
        let mut rounds = 0;
        loop {
            run.start_ready();
            if run.caught_up() {
                break;
            }
            for pick in 0..run.readers.len() {
                run.read(pick, 3);
            }
            while !run.in_flight.is_empty() {
                for sink in 0..SINKS {
                    run.ack(0, sink);
                }
            }
            run.flush();
            rounds += 1;
            prop_assert!(rounds < 100, "the final run does not finish");
        }
        violations.append(&mut run.violations);
        prop_assert!(violations.is_empty(), "{violations:?}");
        for sink in &delivered {
            for (shard, numbers) in &stream.records {
                for n in numbers {
                    prop_assert!(sink.contains(&(*shard, *n)), "{shard}/{n} never delivered");
                }
            }
        }
        for shard in ["a", "b", "c"] {
            prop_assert!(store[shard].finished, "{shard} not recorded as finished");
        }
    }
}
