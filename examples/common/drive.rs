//! Drives a sink with the synthetic stream in batches, as the engine's sink
//! driver would, and times every batch write.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dynamo_cdc::coordinator::{AckTracker, Chunk, ShardKey};
use dynamo_cdc::model::ChangeEvent;
use dynamo_cdc::sink::{Batch, SinkWriter};

use super::synthetic::event;

/// What a run measured.
pub struct Measured {
    /// Wall time of the whole run.
    pub seconds: f64,
    /// Every batch write's duration, sorted.
    pub latencies: Vec<Duration>,
}

impl Measured {
    /// The `p` quantile of the batch latencies, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        let index = ((self.latencies.len() as f64 * p) as usize)
            .min(self.latencies.len().saturating_sub(1));
        self.latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// Writes `changes` synthetic changes over `keys` items into `sink`, in
/// pages of 1000 (as GetRecords delivers them) grouped into batches of `batch`.
pub async fn drive<W: SinkWriter>(
    sink: &mut W,
    changes: usize,
    keys: usize,
    batch: usize,
) -> anyhow::Result<Measured> {
    let tracker = AckTracker::new();
    let key = ShardKey {
        stream: Arc::from("bench"),
        shard: Arc::from("shardId-bench"),
    };
    tracker.open_shard(key.clone(), Arc::from("bench_orders"), None);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut sequence = 0;
    while sequence < changes {
        let mut chunks = Vec::new();
        let mut in_batch = 0;
        while in_batch < batch && sequence < changes {
            let page = 1000.min(changes - sequence);
            let events: Vec<ChangeEvent> = (0..page)
                .map(|i| event(&mut rng, sequence + i, keys))
                .collect();
            sequence += page;
            in_batch += page;
            let last = events
                .last()
                .map(|e| e.position.sequence.clone())
                .expect("page");
            let ack = tracker.register(&key, last, 1, None)?;
            chunks.push(Arc::new(Chunk {
                table: Arc::from("bench_orders"),
                bytes: 600 * page as u64,
                events,
                ack,
                sweep_below: None,
            }));
        }
        let batch = Batch { chunks };
        let t0 = Instant::now();
        let rejected = sink.write(batch.clone()).await?;
        latencies.push(t0.elapsed());
        anyhow::ensure!(
            rejected.is_empty(),
            "{} rows rejected: {:?}",
            rejected.len(),
            rejected.first()
        );
        for chunk in &batch.chunks {
            chunk.ack.ack()?;
        }
    }
    latencies.sort();
    Ok(Measured {
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    })
}
