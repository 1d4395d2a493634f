//! Randomised simulation of lineage + ordered acks + checkpoints over an
//! in-memory fake stream that splits and merges shards, with crashes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::model::SequenceNumber;

const SINKS: usize = 2;

/// a splits into b and c; b and c merge into d; d stays open (no end).
fn fake_stream() -> (Vec<ShardNode>, HashMap<&'static str, Vec<u64>>, HashSet<&'static str>) {
    let node = |id: &str, parents: &[&str]| ShardNode {
        id: id.into(),
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
    };
    let nodes = vec![node("a", &[]), node("b", &["a"]), node("c", &["a"]), node("d", &["b", "c"])];
    let records = HashMap::from([
        ("a", (100..110).collect::<Vec<_>>()),
        ("b", (200..207).collect()),
        ("c", (210..215).collect()),
        ("d", (300..312).collect()),
    ]);
    let closed = HashSet::from(["a", "b", "c"]);
    (nodes, records, closed)
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

struct Reader {
    shard: &'static str,
    next: usize,
}

struct InFlight {
    handle: AckHandle,
    shard: &'static str,
    records: Vec<u64>,
    acked_by: Vec<bool>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn checkpoints_never_pass_unacknowledged_records(
        actions in proptest::collection::vec((0u8..10, any::<u16>()), 50..400)
    ) {
        let (nodes, records, closed) = fake_stream();
        let mut store: HashMap<String, ShardCheckpoint> = HashMap::new();
        let mut delivered: Vec<BTreeSet<(String, u64)>> = vec![BTreeSet::new(); SINKS];
        let mut first_read_of_child: Vec<(&str, bool)> = Vec::new();

        let mut run = |actions: &[(u8, u16)], finish: bool, store: &mut HashMap<String, ShardCheckpoint>| {
            let tracker = AckTracker::new();
            let mut readers: Vec<Reader> = Vec::new();
            let mut drained: HashSet<&str> = HashSet::new();
            let mut in_flight: Vec<InFlight> = Vec::new();
            let mut steps = actions.iter().copied().chain(std::iter::repeat((0u8, 0u16)));
            let mut idle_rounds = 0;
            loop {
                // Start every ready shard.
                let ready: Vec<&'static str> = ready_shards(
                    &nodes,
                    |id| drained.contains(id) || store.get(id).is_some_and(|c| c.finished),
                    |id| readers.iter().any(|r| r.shard == id),
                )
                .into_iter()
                .map(|id| *records.keys().find(|k| **k == id).unwrap())
                .collect();
                for shard in ready {
                    let checkpoint = store.get(shard).and_then(|c| c.sequence.clone());
                    let next = records[shard]
                        .iter()
                        .position(|n| checkpoint.as_ref().is_none_or(|c| seq(*n) > *c))
                        .unwrap_or(records[shard].len());
                    for node in &nodes {
                        if node.id == shard {
                            for parent in &node.parents {
                                let parent_done = drained.contains(parent.as_str())
                                    || store.get(parent).is_some_and(|c| c.finished);
                                first_read_of_child.push((shard, parent_done));
                            }
                        }
                    }
                    tracker.open_shard(key(shard), Arc::from("t"), checkpoint);
                    readers.push(Reader { shard, next });
                }
                let Some((kind, pick)) = steps.next() else { break };
                let in_prefix = idle_rounds == 0 && !finish;
                match kind {
                    // Read a page of 0..=3 records.
                    0..=3 if !readers.is_empty() => {
                        let reader_index = pick as usize % readers.len();
                        let reader = &mut readers[reader_index];
                        let all = &records[reader.shard];
                        let take = (pick as usize / 7) % 4;
                        let page: Vec<u64> = all.iter().skip(reader.next).take(take).copied().collect();
                        reader.next += page.len();
                        if let Some(last) = page.last() {
                            let handle = tracker.register(&key(reader.shard), seq(*last), SINKS).unwrap();
                            in_flight.push(InFlight { handle, shard: reader.shard, records: page, acked_by: vec![false; SINKS] });
                        }
                        if reader.next == all.len() && closed.contains(reader.shard) {
                            tracker.mark_drained(&key(reader.shard));
                            drained.insert(reader.shard);
                            readers.remove(reader_index);
                        }
                    }
                    // A sink makes one chunk durable, in any order.
                    4..=6 if !in_flight.is_empty() => {
                        let index = pick as usize % in_flight.len();
                        let sink = (pick as usize / 3) % SINKS;
                        let chunk = &mut in_flight[index];
                        if !chunk.acked_by[sink] {
                            for n in &chunk.records {
                                delivered[sink].insert((chunk.shard.to_owned(), *n));
                            }
                            chunk.acked_by[sink] = true;
                            chunk.handle.ack().unwrap();
                        }
                        if chunk.acked_by.iter().all(|a| *a) {
                            in_flight.remove(index);
                        }
                    }
                    // The checkpoint writer persists what advanced.
                    7 | 8 => {
                        for update in tracker.take_updates() {
                            let entry = store.entry(update.key.shard.to_string()).or_default();
                            if update.sequence.is_some() {
                                entry.sequence = update.sequence;
                            }
                            entry.finished |= update.finished;
                        }
                    }
                    // Crash: everything in memory is lost.
                    9 if in_prefix => return false,
                    _ => {}
                }
                // Invariant: every stored checkpoint is covered by both sinks.
                for (shard, checkpoint) in store.iter() {
                    if let Some(cp) = &checkpoint.sequence {
                        for n in &records[shard.as_str()] {
                            if seq(*n) <= *cp {
                                for sink in &delivered {
                                    assert!(sink.contains(&(shard.clone(), *n)), "checkpoint {cp} of {shard} passed undelivered {n}");
                                }
                            }
                        }
                    }
                }
                let done = readers.iter().all(|r| r.next == records[r.shard].len())
                    && in_flight.is_empty()
                    && !tracker.has_updates()
                    && nodes.iter().all(|n| !closed.contains(n.id.as_str()) || drained.contains(n.id.as_str()) || store.get(&n.id).is_some_and(|c| c.finished));
                if done {
                    return true;
                }
                if kind > 9 || (idle_rounds > 0) {
                    idle_rounds += 1;
                }
                if idle_rounds == 0 && steps.size_hint().1.is_some() {
                    idle_rounds = 1;
                }
            }
            true
        };
        // Crash-prone runs over chunks of the actions, then a final run to completion.
        for window in actions.chunks(60) {
            run(window, false, &mut store);
        }
        let finished = run(&[], true, &mut store);
        prop_assert!(finished);
        for sink in &delivered {
            for (shard, numbers) in &records {
                for n in numbers {
                    prop_assert!(sink.contains(&((*shard).to_owned(), *n)), "{shard}/{n} never delivered");
                }
            }
        }
        for (child, parent_done) in first_read_of_child {
            prop_assert!(parent_done, "{child} started before its parents were done");
        }
    }
}
