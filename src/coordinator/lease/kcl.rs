//! Reading a KCL application's lease table (KCL 1.x, 2.x and 3.x, for
//! DynamoDB Streams or Kinesis): which shard each lease is for, and where
//! the application had got to.

use super::table::{Lease, SHARD_END, TRIM_HORIZON};
use crate::model::SequenceNumber;

/// Where a KCL lease says its shard is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KclPosition {
    /// Processed up to and including this record.
    After(SequenceNumber),
    /// Read to its end.
    Finished,
    /// Never checkpointed: `TRIM_HORIZON`.
    TrimHorizon,
    /// Never checkpointed: `LATEST` (KCL would have started at the newest record).
    Latest,
}

/// One KCL lease, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KclLease {
    /// The stream name, for multi-stream leases (`account:stream:epoch:shard`).
    pub stream: Option<String>,
    /// The shard id.
    pub shard: String,
    /// Where the application had got to.
    pub position: KclPosition,
    /// Parent shard ids.
    pub parents: Vec<String>,
}

/// Why a KCL lease cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("KCL lease {key}: {message}")]
pub struct KclError {
    /// The lease key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Reads one KCL lease item.
pub fn read_kcl_lease(lease: &Lease) -> Result<KclLease, KclError> {
    let fail = |message: String| KclError {
        key: lease.key.clone(),
        message,
    };
    // Multi-stream leases: account:stream:creation-epoch:shard-id.
    let parts: Vec<&str> = lease.key.split(':').collect();
    let (stream, shard) = match parts.as_slice() {
        [shard] => (None, (*shard).to_owned()),
        [_, stream, _, shard] => (Some((*stream).to_owned()), (*shard).to_owned()),
        _ => {
            return Err(fail(
                "neither a shard id nor account:stream:epoch:shard".into(),
            ))
        }
    };
    let position = match lease.checkpoint.as_str() {
        SHARD_END => KclPosition::Finished,
        TRIM_HORIZON => KclPosition::TrimHorizon,
        "LATEST" => KclPosition::Latest,
        text => KclPosition::After(
            SequenceNumber::parse(text).map_err(|err| fail(format!("checkpoint: {err}")))?,
        ),
    };
    let parents = lease
        .parents
        .iter()
        .map(|p| p.rsplit(':').next().unwrap_or(p).to_owned())
        .collect();
    Ok(KclLease {
        stream,
        shard,
        position,
        parents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(key: &str, checkpoint: &str) -> Lease {
        Lease {
            key: key.into(),
            owner: Some("kcl-worker".into()),
            counter: 7,
            checkpoint: checkpoint.into(),
            owner_switches: 0,
            parents: vec!["123456789012:orders:1700000000:shardId-000000000000".into()],
            table: None,
            checkpointed_at_ms: None,
            start_at: None,
        }
    }

    #[test]
    fn single_and_multi_stream_keys_and_every_checkpoint_form() {
        let single = read_kcl_lease(&lease("shardId-00000001", "49000000000000000000042")).unwrap();
        assert_eq!(
            (single.stream, single.shard.as_str()),
            (None, "shardId-00000001")
        );
        assert!(
            matches!(single.position, KclPosition::After(ref s) if s.digits() == "49000000000000000000042")
        );
        assert_eq!(single.parents, ["shardId-000000000000"]);
        let multi = read_kcl_lease(&lease(
            "123456789012:orders:1700000000:shardId-000000000002",
            "SHARD_END",
        ))
        .unwrap();
        assert_eq!(multi.stream.as_deref(), Some("orders"));
        assert_eq!(multi.position, KclPosition::Finished);
        assert_eq!(
            read_kcl_lease(&lease("s", "TRIM_HORIZON"))
                .unwrap()
                .position,
            KclPosition::TrimHorizon
        );
        assert_eq!(
            read_kcl_lease(&lease("s", "LATEST")).unwrap().position,
            KclPosition::Latest
        );
        let bad = read_kcl_lease(&lease("s", "AT_TIMESTAMP")).unwrap_err();
        assert!(bad.to_string().contains("KCL lease s: checkpoint"), "{bad}");
        assert!(read_kcl_lease(&lease("a:b", "1")).is_err());
    }
}
