//! The lease table in DynamoDB, in KCL's item shape: every write is
//! conditional on the expected `leaseOwner` and `leaseCounter`, so a worker
//! that lost a lease can never move it (or its checkpoint).
//!
//! Items: `leaseKey` (hash key; `<stream id>:<shard id>` as in KCL's
//! multi-stream mode), `leaseOwner`, `leaseCounter`, `checkpoint` (a
//! sequence number, `TRIM_HORIZON`, `LATEST` or `SHARD_END`),
//! `checkpointSubSequenceNumber` (always 0 here), `ownerSwitchesSinceCheckpoint`,
//! `parentShardId` (a string set). Attributes of our own start with
//! `dcdc_`. Worker heartbeats are items too, keyed `dcdc-worker#<id>`.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};

/// The checkpoint of a shard read to its end (KCL's sentinel).
pub const SHARD_END: &str = "SHARD_END";
/// The checkpoint of a shard not read yet (KCL's sentinel).
pub const TRIM_HORIZON: &str = "TRIM_HORIZON";
/// Key prefix of worker heartbeat items.
pub const HEARTBEAT_PREFIX: &str = "dcdc-worker#";
/// Key prefix of snapshot items (a table's snapshot and its segments).
pub const SNAPSHOT_PREFIX: &str = "dcdc-snapshot#";

/// A lease table failure, naming the table and operation.
#[derive(Debug, thiserror::Error)]
pub enum LeaseTableError {
    /// A DynamoDB call failed.
    #[error("lease table {table}: {operation}: {message}")]
    Call {
        /// The lease table.
        table: String,
        /// The DynamoDB operation.
        operation: &'static str,
        /// What DynamoDB said.
        message: String,
    },
    /// An item does not have the lease shape.
    #[error("lease table {table}: item {key}: {message}")]
    Malformed {
        /// The lease table.
        table: String,
        /// The item's leaseKey.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// One lease item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// `leaseKey`.
    pub key: String,
    /// `leaseOwner`, if owned.
    pub owner: Option<String>,
    /// `leaseCounter`.
    pub counter: u64,
    /// `checkpoint`.
    pub checkpoint: String,
    /// `ownerSwitchesSinceCheckpoint`.
    pub owner_switches: u64,
    /// `parentShardId` (lease keys of the parents, for this engine's leases).
    pub parents: Vec<String>,
    /// `dcdc_table`: the source table, for this engine's leases.
    pub table: Option<String>,
    /// `dcdc_checkpointed_at`: when the checkpoint was last written
    /// (milliseconds since the Unix epoch), for this engine's leases.
    pub checkpointed_at_ms: Option<u64>,
    /// `dcdc_start_at`: without a checkpoint, the record reading starts at
    /// (inclusive), recorded by a snapshot.
    pub start_at: Option<String>,
}

/// Whether a conditional write went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The condition held and the item changed.
    Done,
    /// The condition failed: another worker changed the lease first.
    Lost,
}

/// The lease table client.
#[derive(Clone)]
pub struct LeaseTable {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) name: String,
}

pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(super) fn n(number: u64) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

impl LeaseTable {
    /// The lease table `name`, reached through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, name: &str) -> Self {
        Self {
            client,
            name: name.to_owned(),
        }
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn call_error(
        &self,
        operation: &'static str,
        err: impl std::fmt::Display,
    ) -> LeaseTableError {
        LeaseTableError::Call {
            table: self.name.clone(),
            operation,
            message: err.to_string(),
        }
    }

    /// An SDK failure of `operation`, with its whole chain of causes.
    pub(super) fn sdk_error(
        &self,
        operation: &'static str,
        err: impl std::error::Error,
    ) -> LeaseTableError {
        self.call_error(operation, aws_sdk_dynamodb::error::DisplayErrorContext(err))
    }

    /// Creates the table (on-demand billing, `leaseKey` as hash key) when
    /// it does not exist, and waits until it is active.
    pub async fn ensure_exists(&self) -> Result<(), LeaseTableError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await;
        let missing = match &described {
            Ok(_) => false,
            Err(err) => err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
        };
        if let (Err(err), false) = (&described, missing) {
            return Err(self.sdk_error("DescribeTable", err));
        }
        if missing {
            self.create().await?;
        }
        self.wait_active().await
    }

    async fn create(&self) -> Result<(), LeaseTableError> {
        let attribute = AttributeDefinition::builder()
            .attribute_name("leaseKey")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| self.call_error("CreateTable", e))?;
        let key = KeySchemaElement::builder()
            .attribute_name("leaseKey")
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| self.call_error("CreateTable", e))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .attribute_definitions(attribute)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table = %self.name, "lease table created (on-demand billing)");
                Ok(())
            }
            // Another worker created it at the same moment.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(self.sdk_error("CreateTable", err)),
        }
    }

    async fn wait_active(&self) -> Result<(), LeaseTableError> {
        for _ in 0..600 {
            let output = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .map_err(|e| self.sdk_error("DescribeTable", e))?;
            if output.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.call_error(
            "DescribeTable",
            "the table did not become ACTIVE within 60 s",
        ))
    }

    /// Every lease and heartbeat item (a strongly consistent Scan when
    /// `consistent`, else an eventually consistent one at half the cost).
    pub async fn scan(&self, consistent: bool) -> Result<Vec<Lease>, LeaseTableError> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(consistent)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Scan", e))?;
            for item in output.items.unwrap_or_default() {
                leases.push(self.parse(&item)?);
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(leases),
            }
        }
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<Lease, LeaseTableError> {
        let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
        };
        let key = text("leaseKey").unwrap_or_default();
        let malformed = |message: &str| LeaseTableError::Malformed {
            table: self.name.clone(),
            key: key.clone(),
            message: message.to_owned(),
        };
        if key.is_empty() {
            return Err(malformed("no leaseKey string"));
        }
        Ok(Lease {
            owner: text("leaseOwner"),
            counter: number("leaseCounter")
                .ok_or_else(|| malformed("leaseCounter is not a whole number"))?,
            checkpoint: text("checkpoint").unwrap_or_else(|| TRIM_HORIZON.to_owned()),
            owner_switches: number("ownerSwitchesSinceCheckpoint").unwrap_or(0),
            parents: item
                .get("parentShardId")
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default(),
            table: text("dcdc_table"),
            checkpointed_at_ms: number("dcdc_checkpointed_at"),
            start_at: text("dcdc_start_at"),
            key,
        })
    }

    /// Creates a lease for a shard unless one exists (then `Lost`).
    pub async fn create_lease(
        &self,
        key: &str,
        parents: &[String],
        extra: &[(&str, &str)],
    ) -> Result<Written, LeaseTableError> {
        self.create_lease_at(key, parents, TRIM_HORIZON, extra)
            .await
    }

    /// Creates an unowned lease for a shard at `checkpoint` (`TRIM_HORIZON`
    /// to read it all, `SHARD_END` for one never to be read) unless one
    /// exists (then `Lost`).
    pub async fn create_lease_at(
        &self,
        key: &str,
        parents: &[String],
        checkpoint: &str,
        extra: &[(&str, &str)],
    ) -> Result<Written, LeaseTableError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("leaseKey", s(key))
            .item("leaseCounter", n(0))
            .item("checkpoint", s(checkpoint))
            .item("checkpointSubSequenceNumber", n(0))
            .item("ownerSwitchesSinceCheckpoint", n(0))
            .condition_expression("attribute_not_exists(leaseKey)");
        if !parents.is_empty() {
            request = request.item("parentShardId", AttributeValue::Ss(parents.to_vec()));
        }
        for (name, value) in extra {
            request = request.item(format!("dcdc_{name}"), s(value));
        }
        self.conditional("PutItem", request.send().await)
    }

    /// Creates an unowned lease whose shard resumes after `checkpoint` (a
    /// sequence number or `SHARD_END`; an import), or moves an existing
    /// lease's checkpoint forward when nobody owns it. `Lost` when a worker
    /// owns it (stop the fleet before importing).
    pub async fn import_lease(
        &self,
        key: &str,
        parents: &[String],
        checkpoint: &str,
        extra: &[(&str, &str)],
    ) -> Result<Written, LeaseTableError> {
        let mut update = "SET checkpoint = :checkpoint, checkpointSubSequenceNumber = :zero, \
             ownerSwitchesSinceCheckpoint = :zero, dcdc_checkpointed_at = :now, \
             leaseCounter = if_not_exists(leaseCounter, :zero)"
            .to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(key))
            .condition_expression("attribute_not_exists(leaseOwner)")
            .expression_attribute_values(":checkpoint", s(checkpoint))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now_ms()));
        if !parents.is_empty() {
            update.push_str(", parentShardId = :parents");
            request = request
                .expression_attribute_values(":parents", AttributeValue::Ss(parents.to_vec()));
        }
        for (index, (name, value)) in extra.iter().enumerate() {
            update.push_str(&format!(", dcdc_{name} = :extra{index}"));
            request = request.expression_attribute_values(format!(":extra{index}"), s(value));
        }
        self.conditional("UpdateItem", request.update_expression(update).send().await)
    }

    /// Takes a lease seen at `counter` (owned by `from`, or unowned) for `me`.
    pub async fn take(
        &self,
        key: &str,
        counter: u64,
        from: Option<&str>,
        me: &str,
    ) -> Result<Written, LeaseTableError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(key))
            .update_expression(
                "SET leaseOwner = :me, leaseCounter = :next, \
                 ownerSwitchesSinceCheckpoint = ownerSwitchesSinceCheckpoint + :one",
            )
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":next", n(counter + 1))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":seen", n(counter));
        let request = match from {
            Some(owner) => request
                .condition_expression("leaseCounter = :seen AND leaseOwner = :owner")
                .expression_attribute_values(":owner", s(owner)),
            None => request
                .condition_expression("leaseCounter = :seen AND attribute_not_exists(leaseOwner)"),
        };
        self.conditional("UpdateItem", request.send().await)
    }

    /// Renews `me`'s lease seen at `counter`, writing `checkpoint` with it
    /// when given (the checkpoint write folded into the renewal).
    pub async fn renew(
        &self,
        key: &str,
        counter: u64,
        me: &str,
        checkpoint: Option<&str>,
    ) -> Result<Written, LeaseTableError> {
        self.owner_update(key, counter, me, checkpoint, false).await
    }

    /// Gives up `me`'s lease (writing `checkpoint` first when given), so
    /// another worker can take it at once.
    pub async fn release(
        &self,
        key: &str,
        counter: u64,
        me: &str,
        checkpoint: Option<&str>,
    ) -> Result<Written, LeaseTableError> {
        self.owner_update(key, counter, me, checkpoint, true).await
    }

    /// The owner's conditional write: the counter moves on, the checkpoint
    /// (when given) is written, and with `release` the owner is removed.
    async fn owner_update(
        &self,
        key: &str,
        counter: u64,
        me: &str,
        checkpoint: Option<&str>,
        release: bool,
    ) -> Result<Written, LeaseTableError> {
        let mut update = "SET leaseCounter = :next".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(key))
            .condition_expression("leaseOwner = :me AND leaseCounter = :seen")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":seen", n(counter))
            .expression_attribute_values(":next", n(counter + 1));
        if let Some(checkpoint) = checkpoint {
            update.push_str(
                ", checkpoint = :checkpoint, ownerSwitchesSinceCheckpoint = :zero, \
                 dcdc_checkpointed_at = :now",
            );
            request = request
                .expression_attribute_values(":checkpoint", s(checkpoint))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":now", n(now_ms()));
        }
        if release {
            update.push_str(" REMOVE leaseOwner");
        }
        self.conditional("UpdateItem", request.update_expression(update).send().await)
    }

    /// Writes `me`'s heartbeat (its counter grows by one).
    pub async fn heartbeat(&self, me: &str) -> Result<(), LeaseTableError> {
        self.client
            .update_item()
            .table_name(&self.name)
            .key("leaseKey", s(&format!("{HEARTBEAT_PREFIX}{me}")))
            .update_expression("SET leaseOwner = :me, checkpoint = :none ADD leaseCounter :one")
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":none", s(SHARD_END))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| self.sdk_error("UpdateItem", e))?;
        Ok(())
    }

    /// Deletes `me`'s heartbeat, so that the others count one worker less
    /// at once (a graceful stop).
    pub async fn remove_heartbeat(&self, me: &str) -> Result<(), LeaseTableError> {
        self.delete_item(&format!("{HEARTBEAT_PREFIX}{me}")).await
    }

    /// Deletes the heartbeat of `worker` if its counter is still `counter`
    /// (it stopped beating: it died), so that the table lists live
    /// workers only. `Lost` when it beat again or is gone already.
    pub async fn remove_dead_heartbeat(
        &self,
        worker: &str,
        counter: u64,
    ) -> Result<Written, LeaseTableError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.name)
            .key("leaseKey", s(&format!("{HEARTBEAT_PREFIX}{worker}")))
            .condition_expression("leaseCounter = :seen")
            .expression_attribute_values(":seen", n(counter))
            .send()
            .await;
        self.conditional("DeleteItem", result)
    }

    pub(super) fn conditional<T, E>(
        &self,
        operation: &'static str,
        result: Result<
            T,
            aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
        >,
    ) -> Result<Written, LeaseTableError>
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        match result {
            Ok(_) => Ok(Written::Done),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(Written::Lost),
            Err(err) => Err(self.sdk_error(operation, err)),
        }
    }
}
