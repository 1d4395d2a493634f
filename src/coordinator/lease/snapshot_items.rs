//! Snapshot items in the lease table: one per table
//! (`dcdc-snapshot#<table>`: phase, version, recorded stream, the run) and
//! one per Scan segment (`dcdc-snapshot#<table>#<segment>`), a lease of its
//! own whose owner scans it. Every write that follows an owner is
//! conditional on `leaseOwner`, `leaseCounter` and the snapshot's run, so a
//! worker that lost a segment (or a stale start) can never move it.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::table::{
    n, now_ms, s, LeaseTable, LeaseTableError, Written, SHARD_END, SNAPSHOT_PREFIX,
};

type Item = HashMap<String, AttributeValue>;

/// A table's snapshot item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotItem {
    /// `leaseCounter`: grows with every write.
    pub counter: u64,
    /// `leaseOwner`: the worker starting the snapshot (phase `starting`).
    pub owner: Option<String>,
    /// `dcdc_state`: `needed`, `starting`, `running` or `done`.
    pub state: String,
    /// `dcdc_reason`: why a snapshot is needed.
    pub reason: Option<String>,
    /// `dcdc_stream`: the stream followed after the snapshot.
    pub stream: Option<String>,
    /// `dcdc_version`: the version of the snapshot rows.
    pub version: Option<String>,
    /// `dcdc_segments`: how many Scan segments.
    pub segments: u32,
    /// `dcdc_run`: identifies this snapshot among the table's snapshots.
    pub run: Option<String>,
    /// `dcdc_started_at`: milliseconds since the Unix epoch.
    pub started_at_ms: Option<u64>,
    /// `dcdc_floor`: the highest sequence number the table reached before
    /// its checkpoints were dropped.
    pub floor: Option<String>,
}

/// One Scan segment's item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentItem {
    /// Segment number.
    pub segment: u32,
    /// `leaseCounter`.
    pub counter: u64,
    /// `leaseOwner`: the worker scanning it.
    pub owner: Option<String>,
    /// `dcdc_run`: the snapshot it belongs to.
    pub run: String,
    /// `dcdc_done`: every page is acknowledged.
    pub done: bool,
    /// `dcdc_last_key`: the last acknowledged page's `LastEvaluatedKey`.
    pub last_key: Option<String>,
    /// `dcdc_items`: items acknowledged.
    pub items: u64,
    /// `dcdc_pages`: pages acknowledged.
    pub pages: u64,
    /// `dcdc_scanned_by`: the last worker that stored progress.
    pub scanned_by: Option<String>,
}

/// A segment's progress to store with an owner write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentWrite {
    /// The last acknowledged page's `LastEvaluatedKey`.
    pub last_key: Option<String>,
    /// Items acknowledged.
    pub items: u64,
    /// Pages acknowledged.
    pub pages: u64,
    /// Every page is acknowledged.
    pub done: bool,
}

/// The key of `table`'s snapshot item.
pub fn snapshot_key(table: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{table}")
}

/// The key of segment `segment` of `table`'s snapshot.
pub fn segment_key(table: &str, segment: u32) -> String {
    format!("{SNAPSHOT_PREFIX}{table}#{segment}")
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// A whole number stored as a number or as a string (the snapshot item's
/// fields are written as strings).
fn whole(item: &Item, name: &str) -> Option<u64> {
    number(item, name).or_else(|| text(item, name).and_then(|t| t.parse().ok()))
}

impl LeaseTable {
    fn malformed(&self, key: &str, message: &str) -> LeaseTableError {
        LeaseTableError::Malformed {
            table: self.name.clone(),
            key: key.to_owned(),
            message: message.to_owned(),
        }
    }

    /// `table`'s snapshot item (a strongly consistent read).
    pub async fn snapshot_item(
        &self,
        table: &str,
    ) -> Result<Option<SnapshotItem>, LeaseTableError> {
        let key = snapshot_key(table);
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("leaseKey", s(&key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        Ok(Some(SnapshotItem {
            counter: number(&item, "leaseCounter")
                .ok_or_else(|| self.malformed(&key, "leaseCounter is not a whole number"))?,
            owner: text(&item, "leaseOwner"),
            state: text(&item, "dcdc_state")
                .ok_or_else(|| self.malformed(&key, "no dcdc_state"))?,
            reason: text(&item, "dcdc_reason"),
            stream: text(&item, "dcdc_stream"),
            version: text(&item, "dcdc_version"),
            segments: whole(&item, "dcdc_segments")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            run: text(&item, "dcdc_run"),
            started_at_ms: whole(&item, "dcdc_started_at"),
            floor: text(&item, "dcdc_floor"),
        }))
    }

    /// Writes `table`'s snapshot item as `fields` (names without the
    /// `dcdc_` prefix; `None` removes one), with `owner` as `leaseOwner`.
    /// Conditional on the counter last seen (`None`: on there being no item
    /// yet); the counter moves on, so every write fences the ones that
    /// read the item before it.
    pub async fn write_snapshot_item(
        &self,
        table: &str,
        seen: Option<u64>,
        owner: Option<&str>,
        fields: &[(&str, Option<String>)],
    ) -> Result<Written, LeaseTableError> {
        let next = seen.map_or(1, |c| c + 1);
        let mut sets = vec![
            "leaseCounter = :next".to_owned(),
            "checkpoint = :end".to_owned(),
        ];
        let mut removes = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(&snapshot_key(table)))
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":end", s(SHARD_END));
        request = match seen {
            Some(counter) => request
                .condition_expression("leaseCounter = :seen")
                .expression_attribute_values(":seen", n(counter)),
            None => request.condition_expression("attribute_not_exists(leaseKey)"),
        };
        match owner {
            Some(owner) => {
                sets.push("leaseOwner = :owner".to_owned());
                request = request.expression_attribute_values(":owner", s(owner));
            }
            None => removes.push("leaseOwner".to_owned()),
        }
        for (index, (name, value)) in fields.iter().enumerate() {
            match value {
                Some(value) => {
                    sets.push(format!("dcdc_{name} = :f{index}"));
                    request = request.expression_attribute_values(format!(":f{index}"), s(value));
                }
                None => removes.push(format!("dcdc_{name}")),
            }
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        self.conditional("UpdateItem", request.update_expression(update).send().await)
    }

    /// Creates segment `segment` of `table`'s snapshot `run`, unowned and
    /// unscanned, unless it exists for that run already.
    pub async fn create_segment(
        &self,
        table: &str,
        run: &str,
        segment: u32,
    ) -> Result<Written, LeaseTableError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("leaseKey", s(&segment_key(table, segment)))
            .item("leaseCounter", n(0))
            .item("checkpoint", s("TRIM_HORIZON"))
            .item("dcdc_table", s(table))
            .item("dcdc_run", s(run))
            .item("dcdc_done", n(0))
            .item("dcdc_items", n(0))
            .item("dcdc_pages", n(0))
            .condition_expression("attribute_not_exists(leaseKey) OR dcdc_run <> :run")
            .expression_attribute_values(":run", s(run));
        self.conditional("PutItem", request.send().await)
    }

    /// Segments `0..total` of `table`'s snapshot (strongly consistent
    /// reads, 100 keys per request); missing ones are left out.
    pub async fn segment_items(
        &self,
        table: &str,
        total: u32,
    ) -> Result<Vec<SegmentItem>, LeaseTableError> {
        let keys: Vec<u32> = (0..total).collect();
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut wanted = KeysAndAttributes::builder().consistent_read(true);
            for segment in chunk {
                wanted = wanted.keys(HashMap::from([(
                    "leaseKey".to_owned(),
                    s(&segment_key(table, *segment)),
                )]));
            }
            let mut pending = Some(HashMap::from([(
                self.name.clone(),
                wanted
                    .build()
                    .map_err(|e| self.call_error("BatchGetItem", e))?,
            )]));
            while let Some(request) = pending.take().filter(|r| !r.is_empty()) {
                let output = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| self.sdk_error("BatchGetItem", e))?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(&self.name))
                    .unwrap_or_default()
                {
                    found.push(self.parse_segment(table, &item)?);
                }
                pending = output.unprocessed_keys;
            }
        }
        found.sort_by_key(|s| s.segment);
        Ok(found)
    }

    fn parse_segment(&self, table: &str, item: &Item) -> Result<SegmentItem, LeaseTableError> {
        let key = text(item, "leaseKey").unwrap_or_default();
        let prefix = format!("{SNAPSHOT_PREFIX}{table}#");
        let segment = key
            .strip_prefix(&prefix)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| self.malformed(&key, "not a segment key"))?;
        Ok(SegmentItem {
            segment,
            counter: number(item, "leaseCounter")
                .ok_or_else(|| self.malformed(&key, "leaseCounter is not a whole number"))?,
            owner: text(item, "leaseOwner"),
            run: text(item, "dcdc_run").ok_or_else(|| self.malformed(&key, "no dcdc_run"))?,
            done: number(item, "dcdc_done") == Some(1),
            last_key: text(item, "dcdc_last_key"),
            items: number(item, "dcdc_items").unwrap_or(0),
            pages: number(item, "dcdc_pages").unwrap_or(0),
            scanned_by: text(item, "dcdc_scanned_by"),
        })
    }

    /// Takes segment `segment` of snapshot `run`, seen at `counter` (owned
    /// by `from`, or unowned), for `me`.
    pub async fn take_segment(
        &self,
        table: &str,
        run: &str,
        segment: &SegmentItem,
        me: &str,
    ) -> Result<Written, LeaseTableError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(&segment_key(table, segment.segment)))
            .update_expression("SET leaseOwner = :me, leaseCounter = :next")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":next", n(segment.counter + 1))
            .expression_attribute_values(":seen", n(segment.counter))
            .expression_attribute_values(":run", s(run))
            .expression_attribute_values(":zero", n(0));
        let request = match &segment.owner {
            Some(owner) => request
                .condition_expression(
                    "leaseCounter = :seen AND leaseOwner = :owner AND dcdc_run = :run AND dcdc_done = :zero",
                )
                .expression_attribute_values(":owner", s(owner)),
            None => request.condition_expression(
                "leaseCounter = :seen AND attribute_not_exists(leaseOwner) AND dcdc_run = :run AND dcdc_done = :zero",
            ),
        };
        self.conditional("UpdateItem", request.send().await)
    }

    /// `me`'s write of a segment it holds at `counter`: renews it, stores
    /// `progress` when given, and with `release` gives it up.
    pub async fn write_segment(
        &self,
        table: &str,
        run: &str,
        (segment, counter): (u32, u64),
        me: &str,
        progress: Option<&SegmentWrite>,
        release: bool,
    ) -> Result<Written, LeaseTableError> {
        let mut sets = vec!["leaseCounter = :next".to_owned()];
        let mut removes = Vec::new();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(&segment_key(table, segment)))
            .condition_expression("leaseOwner = :me AND leaseCounter = :seen AND dcdc_run = :run")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":seen", n(counter))
            .expression_attribute_values(":next", n(counter + 1))
            .expression_attribute_values(":run", s(run));
        if let Some(progress) = progress {
            sets.extend(
                [
                    "dcdc_items = :items",
                    "dcdc_pages = :pages",
                    "dcdc_done = :done",
                    "dcdc_scanned_by = :me",
                    "dcdc_checkpointed_at = :now",
                ]
                .map(str::to_owned),
            );
            request = request
                .expression_attribute_values(":items", n(progress.items))
                .expression_attribute_values(":pages", n(progress.pages))
                .expression_attribute_values(":done", n(u64::from(progress.done)))
                .expression_attribute_values(":now", n(now_ms()));
            match &progress.last_key {
                Some(last_key) => {
                    sets.push("dcdc_last_key = :last".to_owned());
                    request = request.expression_attribute_values(":last", s(last_key));
                }
                None => removes.push("dcdc_last_key"),
            }
            if progress.done {
                sets.push("checkpoint = :end".to_owned());
                request = request.expression_attribute_values(":end", s(SHARD_END));
            }
        }
        if release {
            removes.push("leaseOwner");
        }
        let mut update = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            update.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        self.conditional("UpdateItem", request.update_expression(update).send().await)
    }

    /// Sets a shard lease's position for a snapshot, creating the lease
    /// when missing: `SHARD_END` for a shard closed before the snapshot
    /// began, or a start (inclusive) a snapshot recorded. The counter
    /// moves, so an owner from before the snapshot loses the lease.
    pub async fn set_shard_position(
        &self,
        key: &str,
        (table, stream, shard): (&str, &str, &str),
        finished: bool,
        start_at: Option<&str>,
    ) -> Result<(), LeaseTableError> {
        let mut update = "SET checkpoint = :checkpoint, checkpointSubSequenceNumber = :zero, \
             ownerSwitchesSinceCheckpoint = :zero, dcdc_checkpointed_at = :now, \
             dcdc_table = :table, dcdc_stream = :stream, dcdc_shard = :shard \
             ADD leaseCounter :one"
            .to_owned();
        let checkpoint = if finished { SHARD_END } else { "TRIM_HORIZON" };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(key))
            .expression_attribute_values(":checkpoint", s(checkpoint))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now_ms()))
            .expression_attribute_values(":table", s(table))
            .expression_attribute_values(":stream", s(stream))
            .expression_attribute_values(":shard", s(shard));
        match start_at {
            Some(start) => {
                update =
                    update.replacen(" ADD", ", dcdc_start_at = :start REMOVE leaseOwner ADD", 1);
                request = request.expression_attribute_values(":start", s(start));
            }
            None => update = update.replacen(" ADD", " REMOVE leaseOwner, dcdc_start_at ADD", 1),
        }
        request
            .update_expression(update)
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateItem", e))?;
        Ok(())
    }

    /// Deletes an item (a dropped checkpoint); its owner's next write fails.
    pub async fn delete_item(&self, key: &str) -> Result<(), LeaseTableError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("leaseKey", s(key))
            .send()
            .await
            .map_err(|e| self.sdk_error("DeleteItem", e))?;
        Ok(())
    }
}
