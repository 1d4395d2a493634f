//! Shard ownership through a DynamoDB lease table that many workers share:
//! a background loop heartbeats, reads the table, and renews, takes and
//! steals leases by the [`super::balance`] rules every third of a lease
//! duration; checkpoints are folded into the renewals.
//!
//! Failover: between renewals the loop looks at the table every
//! `handover_check_interval`, and also wakes at the moment another owner's
//! lease expires by its own clock (a lease duration after it first saw the
//! lease's current counter), so a dead worker's leases move within a lease
//! duration plus one look of its last renewal, not a renew period later.
//! Once they have all moved, its heartbeat item is deleted.
//!
//! A lease key is `<stream id>:<shard id>`. A shard's lease is created when
//! the shard becomes ready to read (its parents finished), so a child's
//! lease appears only once its parents reached `SHARD_END`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::balance::{plan, BalanceSettings, ExpiryWatch, LeaseView, Plan};
use super::table::{
    Lease, LeaseTable, LeaseTableError, Written, HEARTBEAT_PREFIX, SHARD_END, SNAPSHOT_PREFIX,
};
use crate::coordinator::lineage::ShardNode;
use crate::coordinator::ownership::{Claimed, Ownership, OwnershipError, StreamState};
use crate::coordinator::store::ShardCheckpoint;
use crate::coordinator::tracker::CheckpointUpdate;
use crate::future::BoxFuture;
use crate::metric_names as names;
use crate::model::SequenceNumber;

/// A lease this worker holds.
struct Held {
    counter: u64,
    stop: CancellationToken,
    /// A checkpoint to write with the next renewal.
    pending: Option<String>,
    /// Handed to a reader already.
    claimed: bool,
}

#[derive(Default)]
struct State {
    held: HashMap<String, Held>,
    /// The last scan, by lease key.
    seen: HashMap<String, Lease>,
    watch: ExpiryWatch,
    beats: ExpiryWatch,
    cycles: u64,
    /// Live workers at the last look (this one included).
    alive: usize,
    /// When (this worker's clock, ms) the next lease of another owner expires.
    next_expiry: Option<u64>,
}

/// Shard ownership shared through a lease table.
pub struct LeaseOwnership {
    table: LeaseTable,
    me: String,
    settings: BalanceSettings,
    /// How often to look for unowned leases between renewals (`None`: only
    /// at renewals).
    quick_check: Option<Duration>,
    state: Mutex<State>,
    changed: Notify,
    shutdown: CancellationToken,
    started: Instant,
}

impl LeaseOwnership {
    /// Ownership as worker `me` over `table`, looking for unowned leases
    /// every `quick_check` between renewals; every reader also stops with
    /// `shutdown`.
    pub fn new(
        table: LeaseTable,
        me: &str,
        settings: BalanceSettings,
        quick_check: Option<Duration>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Self {
            table,
            me: me.to_owned(),
            settings,
            quick_check,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            shutdown,
            started: Instant::now(),
        })
    }

    /// This worker's id.
    pub fn worker(&self) -> &str {
        &self.me
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The renew period: a third of the lease duration.
    pub fn renew_period(&self) -> Duration {
        self.settings.lease_duration / 3
    }

    /// Runs the balancing loop until `stop` (after the engine's last
    /// checkpoint flush), then writes the pending checkpoints and releases
    /// every lease so that others take them at once.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> Result<(), LeaseTableError> {
        let tick = match self.quick_check {
            Some(every) if !every.is_zero() => self.renew_period().min(every),
            _ => self.renew_period(),
        };
        let mut last_full: Option<Instant> = None;
        loop {
            let full = last_full.is_none_or(|at| at.elapsed() + tick / 2 >= self.renew_period());
            if let Err(err) = self.cycle(full).await {
                tracing::warn!(worker = %self.me, "lease cycle failed, retrying: {err}");
            }
            if full {
                last_full = Some(Instant::now());
            }
            tokio::select! {
                () = tokio::time::sleep(self.next_look(tick)) => {}
                () = stop.cancelled() => break,
            }
        }
        self.release_all().await
    }

    /// How long to wait before the next look: a tick, or less when another
    /// owner's lease expires sooner, so that a take-over happens at the
    /// expiry rather than up to a tick later.
    fn next_look(&self, tick: Duration) -> Duration {
        let now = self.now_ms();
        match self.lock().next_expiry {
            Some(at) => tick.min(Duration::from_millis(at.saturating_sub(now))),
            None => tick,
        }
    }

    /// One look at the table. A full cycle (once per renew period):
    /// heartbeat, renew (with checkpoints), take and steal by the balancing
    /// rules, and delete the heartbeats of dead workers whose leases have
    /// all moved. A quick one (every `quick_check` in between and at each
    /// observed expiry, with an eventually consistent read): only take
    /// unowned and expired leases within this worker's share, so that a
    /// stopping worker's released leases and a dead worker's expired ones
    /// move at once. (A stale read cannot take a live lease: every take is
    /// conditional on the counter it saw.)
    pub async fn cycle(&self, full: bool) -> Result<(), LeaseTableError> {
        if full {
            self.table.heartbeat(&self.me).await?;
        }
        let mut items = self.table.scan(full).await?;
        // Snapshot segments are shared by the snapshot's own rules.
        items.retain(|item| !item.key.starts_with(SNAPSHOT_PREFIX));
        let (beats, leases): (Vec<Lease>, Vec<Lease>) = items
            .into_iter()
            .partition(|l| l.key.starts_with(HEARTBEAT_PREFIX));
        let (decided, gone) = self.decide(&beats, &leases, full);
        for key in decided.renew {
            self.renew(&key).await?;
        }
        for key in decided.take {
            // Unowned, or expired: the condition names the silent owner.
            let owner = self.lock().seen.get(&key).and_then(|l| l.owner.clone());
            self.take(&key, owner.as_deref(), false).await?;
        }
        for (key, from) in decided.steal {
            self.take(&key, Some(&from), true).await?;
        }
        for (worker, counter) in gone {
            self.forget_worker(&worker, counter).await;
        }
        metrics::gauge!(names::LEASES_HELD).set(self.lock().held.len() as f64);
        Ok(())
    }

    /// Records what one look saw and decides what to do: the balancing
    /// plan, and (full cycles) the dead workers whose heartbeats may go,
    /// with the heartbeat counters seen.
    fn decide(&self, beats: &[Lease], leases: &[Lease], full: bool) -> (Plan, Vec<(String, u64)>) {
        let now = self.now_ms();
        let duration = self.settings.lease_duration;
        let mut state = self.lock();
        let views = lease_views(leases);
        let beat_views: Vec<LeaseView> = beats.iter().map(|b| view(b, true)).collect();
        state.watch.observe(&views, now);
        state.beats.observe(&beat_views, now);
        if full {
            state.cycles += 1;
        }
        state.seen = leases.iter().map(|l| (l.key.clone(), l.clone())).collect();
        self.drop_lost(&mut state, leases);
        let (alive, dead): (Vec<&Lease>, Vec<&Lease>) = beats
            .iter()
            .partition(|b| !state.beats.is_free(&view(b, true), now, duration));
        let alive: Vec<String> = alive.iter().filter_map(|b| b.owner.clone()).collect();
        state.alive = alive.iter().filter(|w| **w != self.me).count() + 1;
        state.next_expiry = state.watch.next_expiry(&views, &self.me, now, duration);
        let mut decided = plan(&self.me, &alive, &views, &state.watch, now, self.settings);
        if state.cycles <= 1 {
            // The first look only learns who is there.
            decided.take.clear();
            decided.steal.clear();
        }
        if !full {
            decided.renew.clear();
            decided.steal.clear();
            return (decided, Vec::new());
        }
        // A dead worker's heartbeat goes once no readable lease names it.
        let gone = dead
            .iter()
            .filter_map(|b| Some((b.owner.clone()?, b.counter)))
            .filter(|(worker, _)| *worker != self.me)
            .filter(|(worker, _)| {
                !views
                    .iter()
                    .any(|l| l.readable && l.owner.as_deref() == Some(worker.as_str()))
            })
            .collect();
        (decided, gone)
    }

    /// Deletes the heartbeat of `worker`, dead with all its leases moved,
    /// unless it beat again since (`counter` changed). Best effort: a
    /// heartbeat left behind only lists a worker that counts as dead.
    async fn forget_worker(&self, worker: &str, counter: u64) {
        match self.table.remove_dead_heartbeat(worker, counter).await {
            Ok(Written::Done) => tracing::info!(
                worker = %self.me, dead = %worker,
                "heartbeat of a stopped worker removed: its leases have moved"
            ),
            Ok(Written::Lost) => {}
            Err(err) => tracing::warn!(
                worker = %self.me, dead = %worker,
                "cannot remove a stopped worker's heartbeat: {err}"
            ),
        }
    }

    /// Leases this worker believes it holds but the table gives to another
    /// (or to nobody): their readers stop.
    fn drop_lost(&self, state: &mut State, leases: &[Lease]) {
        let owners: HashMap<&str, Option<&str>> = leases
            .iter()
            .map(|l| (l.key.as_str(), l.owner.as_deref()))
            .collect();
        let lost: Vec<String> = state
            .held
            .keys()
            .filter(|key| owners.get(key.as_str()).copied().flatten() != Some(self.me.as_str()))
            .cloned()
            .collect();
        for key in lost {
            if let Some(held) = state.held.remove(&key) {
                tracing::warn!(worker = %self.me, lease = %key, "lease lost: taken by another worker");
                metrics::counter!(names::LEASES_LOST).increment(1);
                held.stop.cancel();
            }
        }
    }

    async fn renew(&self, key: &str) -> Result<(), LeaseTableError> {
        let Some((counter, pending)) = self
            .lock()
            .held
            .get(key)
            .map(|h| (h.counter, h.pending.clone()))
        else {
            return Ok(());
        };
        let finished = pending.as_deref() == Some(SHARD_END);
        let written = if finished {
            self.table
                .release(key, counter, &self.me, pending.as_deref())
                .await?
        } else {
            self.table
                .renew(key, counter, &self.me, pending.as_deref())
                .await?
        };
        let mut state = self.lock();
        match written {
            Written::Done if finished => {
                state.held.remove(key);
                tracing::info!(worker = %self.me, lease = %key, "shard finished; lease released");
            }
            Written::Done => {
                if let Some(held) = state.held.get_mut(key) {
                    held.counter = counter + 1;
                    if held.pending == pending {
                        held.pending = None;
                    }
                }
            }
            Written::Lost => {
                if let Some(held) = state.held.remove(key) {
                    tracing::warn!(worker = %self.me, lease = %key, "lease lost: the renewal's condition failed");
                    metrics::counter!(names::LEASES_LOST).increment(1);
                    held.stop.cancel();
                }
            }
        }
        Ok(())
    }

    async fn take(
        &self,
        key: &str,
        from: Option<&str>,
        steal: bool,
    ) -> Result<(), LeaseTableError> {
        let Some(counter) = self.lock().seen.get(key).map(|l| l.counter) else {
            return Ok(());
        };
        if self.table.take(key, counter, from, &self.me).await? == Written::Lost {
            return Ok(());
        }
        let how = match from {
            Some(owner) if steal => {
                tracing::info!(worker = %self.me, lease = %key, from = %owner, "lease stolen to balance the fleet");
                "stolen"
            }
            Some(owner) => {
                tracing::info!(worker = %self.me, lease = %key, from = %owner, "lease taken: its owner stopped renewing it");
                "expired"
            }
            None => {
                tracing::info!(worker = %self.me, lease = %key, "lease taken (unowned)");
                "unowned"
            }
        };
        metrics::counter!(names::LEASES_TAKEN, "how" => how).increment(1);
        self.lock().held.insert(
            key.to_owned(),
            Held {
                counter: counter + 1,
                stop: self.shutdown.child_token(),
                pending: None,
                claimed: false,
            },
        );
        self.changed.notify_waiters();
        Ok(())
    }

    /// Writes pending checkpoints and releases every held lease. A lease
    /// that cannot be released (the table throttles, say) is left to
    /// expire, as after a crash: a warning, not an error. Its pending
    /// checkpoint is then not written, so its next owner reads again from
    /// the stored one (duplicates, never a gap).
    async fn release_all(&self) -> Result<(), LeaseTableError> {
        let held: Vec<(String, u64, Option<String>)> = self
            .lock()
            .held
            .iter()
            .map(|(key, h)| (key.clone(), h.counter, h.pending.clone()))
            .collect();
        for (key, counter, pending) in held {
            match self
                .table
                .release(&key, counter, &self.me, pending.as_deref())
                .await
            {
                Ok(written) => {
                    tracing::info!(worker = %self.me, lease = %key, released = (written == Written::Done), "lease released at shutdown");
                }
                Err(err) => {
                    tracing::warn!(worker = %self.me, lease = %key, "lease left to expire: {err}");
                }
            }
        }
        self.lock().held.clear();
        // Gone from the fleet now: the others' shares grow at their next look.
        if let Err(err) = self.table.remove_heartbeat(&self.me).await {
            tracing::warn!(worker = %self.me, "heartbeat left to expire: {err}");
        }
        Ok(())
    }

    /// How many workers are alive (this one included), once this worker
    /// has looked at the table long enough to know; `None` before.
    pub fn alive_workers(&self) -> Option<usize> {
        let state = self.lock();
        (state.cycles >= 2).then_some(state.alive.max(1))
    }

    /// Waits until this worker took a lease (the runner then claims it).
    pub async fn taken(&self) {
        self.changed.notified().await;
    }
}

fn view(lease: &Lease, readable: bool) -> LeaseView {
    LeaseView {
        key: lease.key.clone(),
        owner: lease.owner.clone(),
        counter: lease.counter,
        readable,
    }
}

/// Leases as the balancer sees them: finished ones are not readable, nor
/// are those whose parents have not finished.
fn lease_views(leases: &[Lease]) -> Vec<LeaseView> {
    let finished: HashMap<&str, bool> = leases
        .iter()
        .map(|l| (l.key.as_str(), l.checkpoint == SHARD_END))
        .collect();
    leases
        .iter()
        .map(|lease| {
            let parents_done = lease
                .parents
                .iter()
                .all(|p| finished.get(p.as_str()).copied().unwrap_or(true));
            view(lease, lease.checkpoint != SHARD_END && parents_done)
        })
        .collect()
}

/// The lease key of a shard.
pub fn lease_key(stream: &str, shard: &str) -> String {
    format!("{stream}:{shard}")
}

/// A shard lease's checkpoint as the readers use it.
pub(super) fn checkpoint_of(lease: &Lease) -> ShardCheckpoint {
    ShardCheckpoint {
        sequence: SequenceNumber::parse(&lease.checkpoint).ok(),
        finished: lease.checkpoint == SHARD_END,
        start_at: lease
            .start_at
            .as_deref()
            .and_then(|s| SequenceNumber::parse(s).ok()),
    }
}

impl Ownership for LeaseOwnership {
    fn load<'a>(
        &'a self,
        stream: &'a str,
        _table: &'a str,
    ) -> BoxFuture<'a, Result<StreamState, OwnershipError>> {
        Box::pin(async move {
            // The balancing loop's last look (at most a renew period old)
            // serves every load after its first full cycle: a consistent
            // Scan per table per discovery would cost more than the leases.
            let cached: Option<Vec<Lease>> = {
                let state = self.lock();
                (state.cycles >= 1).then(|| state.seen.values().cloned().collect())
            };
            let leases = match cached {
                Some(leases) => leases,
                None => self.table.scan(true).await.map_err(lease_error)?,
            };
            let prefix = format!("{stream}:");
            let checkpoints = leases
                .iter()
                .filter_map(|l| Some((l.key.strip_prefix(&prefix)?.to_owned(), checkpoint_of(l))))
                .collect();
            Ok(StreamState {
                checkpoints,
                other_streams: Vec::new(),
            })
        })
    }

    fn claim<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
        ready: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<Vec<Claimed>, OwnershipError>> {
        Box::pin(async move {
            for shard in ready {
                let key = lease_key(stream, &shard.id);
                if self.lock().seen.contains_key(&key) {
                    continue;
                }
                let parents: Vec<String> =
                    shard.parents.iter().map(|p| lease_key(stream, p)).collect();
                let extra = [
                    ("table", table),
                    ("stream", stream),
                    ("shard", shard.id.as_str()),
                ];
                if self
                    .table
                    .create_lease(&key, &parents, &extra)
                    .await
                    .map_err(lease_error)?
                    == Written::Done
                {
                    tracing::info!(worker = %self.me, lease = %key, "lease created for a shard ready to read");
                }
            }
            let mut state = self.lock();
            let mut claimed = Vec::new();
            for shard in ready {
                let key = lease_key(stream, &shard.id);
                let checkpoint = state.seen.get(&key).map(checkpoint_of);
                if let Some(held) = state.held.get_mut(&key).filter(|h| !h.claimed) {
                    held.claimed = true;
                    claimed.push(Claimed {
                        shard: shard.id.clone(),
                        stop: held.stop.clone(),
                        checkpoint,
                    });
                }
            }
            Ok(claimed)
        })
    }

    fn save(&self, updates: Vec<CheckpointUpdate>) -> BoxFuture<'_, Result<(), OwnershipError>> {
        let mut state = self.lock();
        for update in updates {
            let key = lease_key(&update.key.stream, &update.key.shard);
            // Only leases still held: a lost lease's checkpoint is never written.
            if let Some(held) = state.held.get_mut(&key) {
                held.pending = if update.finished {
                    Some(SHARD_END.to_owned())
                } else {
                    update
                        .sequence
                        .map(|s| s.as_str().to_owned())
                        .or(held.pending.take())
                };
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn skip_closed<'a>(
        &'a self,
        stream: &'a str,
        table: &'a str,
        shards: &'a [ShardNode],
    ) -> BoxFuture<'a, Result<(), OwnershipError>> {
        Box::pin(async move {
            for shard in shards {
                let key = lease_key(stream, &shard.id);
                let parents: Vec<String> =
                    shard.parents.iter().map(|p| lease_key(stream, p)).collect();
                let extra = [("table", table), ("stream", stream), ("shard", &*shard.id)];
                let written = self
                    .table
                    .create_lease_at(&key, &parents, SHARD_END, &extra);
                if written.await.map_err(lease_error)? == Written::Done {
                    tracing::info!(worker = %self.me, lease = %key, "closed shard recorded as finished (first start at latest)");
                }
            }
            Ok(())
        })
    }

    fn changed(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.taken())
    }

    fn settled(&self, stream: &str, unclaimed: &[ShardNode]) -> bool {
        let state = self.lock();
        let now = self.now_ms();
        state.cycles >= 2
            && unclaimed.iter().all(|shard| {
                state
                    .seen
                    .get(&lease_key(stream, &shard.id))
                    .is_some_and(|lease| {
                        lease.owner.as_deref() != Some(self.me.as_str())
                            && !state.watch.is_free(
                                &view(lease, true),
                                now,
                                self.settings.lease_duration,
                            )
                    })
            })
    }
}

/// A lease table failure as the ownership seam reports it.
pub(super) fn lease_error(err: LeaseTableError) -> OwnershipError {
    OwnershipError::Leases(err)
}
