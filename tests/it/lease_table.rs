//! The lease table against DynamoDB Local: created when missing, KCL's item
//! shape, and every write conditional on the expected owner and counter —
//! two workers racing for a lease, a renewal after a steal, a release.

use crate::common;

use dynamo_cdc::coordinator::lease::table::{SHARD_END, TRIM_HORIZON};
use dynamo_cdc::coordinator::lease::{LeaseTable, Written};

async fn new_table() -> (aws_sdk_dynamodb::Client, LeaseTable) {
    let client = common::client().await;
    let name = common::unique_table("leases");
    let table = LeaseTable::new(client.clone(), &name);
    table.ensure_exists().await.expect("create the lease table");
    // A second call finds it.
    table.ensure_exists().await.expect("find the lease table");
    (client, table)
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_have_the_kcl_shape_and_writes_are_fenced() {
    let (client, table) = new_table().await;
    let key = "stream-1:shardId-000000000001";
    let parents = vec!["stream-1:shardId-000000000000".to_owned()];
    assert_eq!(
        table
            .create_lease(key, &parents, &[("table", "orders")])
            .await
            .unwrap(),
        Written::Done
    );
    assert_eq!(
        table.create_lease(key, &[], &[]).await.unwrap(),
        Written::Lost
    );

    // Two workers saw counter 0 and race: exactly one wins.
    let (a, b) = tokio::join!(table.take(key, 0, None, "a"), table.take(key, 0, None, "b"));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|w| **w == Written::Done).count(),
        1,
        "{outcomes:?}"
    );
    let winner = if outcomes[0] == Written::Done {
        "a"
    } else {
        "b"
    };
    let loser = if winner == "a" { "b" } else { "a" };

    // The loser cannot renew or checkpoint; the winner can, with its counter.
    assert_eq!(
        table.renew(key, 1, loser, Some("42")).await.unwrap(),
        Written::Lost
    );
    assert_eq!(
        table.renew(key, 1, winner, Some("100")).await.unwrap(),
        Written::Done
    );
    assert_eq!(
        table.renew(key, 1, winner, None).await.unwrap(),
        Written::Lost,
        "stale counter"
    );

    // The loser steals it (counter 2, owner winner): the winner's next
    // renewal and checkpoint fail on the condition.
    assert_eq!(
        table.take(key, 2, Some(winner), loser).await.unwrap(),
        Written::Done
    );
    assert_eq!(
        table.renew(key, 2, winner, Some("200")).await.unwrap(),
        Written::Lost
    );

    let leases = table.scan(true).await.unwrap();
    let lease = leases.iter().find(|l| l.key == key).expect("the lease");
    assert_eq!(lease.owner.as_deref(), Some(loser));
    assert_eq!(lease.counter, 3);
    assert_eq!(
        lease.checkpoint, "100",
        "the fenced checkpoint was not written"
    );
    assert_eq!(lease.owner_switches, 1);
    assert_eq!(lease.parents, parents);

    // The raw item: KCL's attribute names and types, our extras prefixed.
    let item = client
        .get_item()
        .table_name(table.name())
        .key(
            "leaseKey",
            aws_sdk_dynamodb::types::AttributeValue::S(key.into()),
        )
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("item");
    for (name, kind) in [
        ("leaseOwner", "S"),
        ("leaseCounter", "N"),
        ("checkpoint", "S"),
        ("checkpointSubSequenceNumber", "N"),
        ("ownerSwitchesSinceCheckpoint", "N"),
        ("parentShardId", "SS"),
        ("dcdc_table", "S"),
    ] {
        let value = item
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing: {item:?}"));
        let actual = match value {
            aws_sdk_dynamodb::types::AttributeValue::S(_) => "S",
            aws_sdk_dynamodb::types::AttributeValue::N(_) => "N",
            aws_sdk_dynamodb::types::AttributeValue::Ss(_) => "SS",
            _ => "other",
        };
        assert_eq!(actual, kind, "{name}");
    }

    // Release with a final checkpoint: unowned, taken by the next worker at once.
    assert_eq!(
        table.release(key, 3, loser, Some(SHARD_END)).await.unwrap(),
        Written::Done
    );
    let lease = table
        .scan(true)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.key == key)
        .unwrap();
    assert_eq!(
        (lease.owner, lease.counter, lease.checkpoint.as_str()),
        (None, 4, SHARD_END)
    );
    assert_eq!(
        table.take(key, 4, None, winner).await.unwrap(),
        Written::Done
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeats_count_up_and_new_leases_start_at_the_trim_horizon() {
    let (_client, table) = new_table().await;
    table.heartbeat("worker-a").await.unwrap();
    table.heartbeat("worker-a").await.unwrap();
    table.create_lease("s:shard-0", &[], &[]).await.unwrap();
    let items = table.scan(true).await.unwrap();
    let beat = items
        .iter()
        .find(|l| l.key == "dcdc-worker#worker-a")
        .expect("heartbeat");
    assert_eq!((beat.owner.as_deref(), beat.counter), (Some("worker-a"), 2));
    let lease = items.iter().find(|l| l.key == "s:shard-0").expect("lease");
    assert_eq!(
        (lease.owner.as_deref(), lease.checkpoint.as_str()),
        (None, TRIM_HORIZON)
    );
}

/// Two workers decide to begin the same table's snapshot: the one that
/// writes second fails on the counter its decision saw, even when it read
/// the snapshot item again in between (to compute the version).
#[tokio::test(flavor = "multi_thread")]
async fn only_one_of_two_workers_begins_a_snapshot() {
    use dynamo_cdc::coordinator::lease::{BalanceSettings, LeaseOwnership, LeaseSnapshots};
    use dynamo_cdc::coordinator::{SnapshotBegin, SnapshotPhase, SnapshotState};
    use dynamo_cdc::model::SequenceNumber;
    use std::time::Duration;

    let (_client, table) = new_table().await;
    let settings = BalanceSettings {
        lease_duration: Duration::from_secs(3),
        max_steals: 5,
    };
    let worker = |id: &str| {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let ownership = LeaseOwnership::new(table.clone(), id, settings, None, shutdown);
        LeaseSnapshots::new(table.clone(), ownership, settings.lease_duration)
    };
    let (a, b) = (worker("a"), worker("b"));
    let begin = |version: &str| SnapshotBegin {
        table: "orders".into(),
        stream: "arn:stream".into(),
        version: SequenceNumber::parse(version).expect("version"),
        total_segments: 2,
        clear_checkpoints: false,
        closed_shards: Vec::new(),
    };
    // Both decide on a table without a snapshot.
    assert!(a
        .gate_state("orders", "arn:stream")
        .await
        .unwrap()
        .record
        .is_none());
    assert!(b
        .gate_state("orders", "arn:stream")
        .await
        .unwrap()
        .record
        .is_none());
    assert!(b.begin(begin("7")).await.unwrap(), "the first begin wins");
    // a reads the table again (its version) before it writes: still refused.
    a.highest_sequence("orders").await.unwrap();
    assert!(
        !a.begin(begin("8")).await.unwrap(),
        "the second begin must fail"
    );
    let record = a.record("orders").await.unwrap().expect("a snapshot");
    assert_eq!(
        record.version.map(|v| v.as_str().to_owned()).as_deref(),
        Some("7")
    );
    assert_eq!(record.phase, SnapshotPhase::Running);
    assert_eq!(record.segments.len(), 2);
}

/// A first start at `latest` records closed shards as finished in the
/// lease table (so every worker skips them), and leaves a shard whose
/// lease another worker already created as it is.
#[tokio::test(flavor = "multi_thread")]
async fn closed_shards_skipped_at_a_first_start_are_finished_for_every_worker() {
    use dynamo_cdc::coordinator::lease::{lease_key, BalanceSettings, LeaseOwnership};
    use dynamo_cdc::coordinator::{Ownership, ShardNode};
    use std::time::Duration;

    let (_client, table) = new_table().await;
    let settings = BalanceSettings {
        lease_duration: Duration::from_secs(3),
        max_steals: 5,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let ownership = LeaseOwnership::new(table.clone(), "a", settings, None, shutdown);
    let stream = "arn:stream";
    // Another worker already created the lease of shard-2.
    let taken = lease_key(stream, "shard-2");
    table
        .create_lease(&taken, &[], &[])
        .await
        .expect("create a lease");
    let node = |id: &str, parents: &[&str]| ShardNode {
        id: id.to_owned(),
        parents: parents.iter().map(|p| (*p).to_owned()).collect(),
    };
    let closed = [
        node("shard-1", &[]),
        node("shard-2", &[]),
        node("shard-3", &["shard-1"]),
    ];
    ownership
        .skip_closed(stream, "orders", &closed)
        .await
        .expect("skip the closed shards");
    let leases = table.scan(true).await.expect("scan");
    let checkpoint = |shard: &str| {
        let key = lease_key(stream, shard);
        leases
            .iter()
            .find(|lease| lease.key == key)
            .map(|lease| lease.checkpoint.clone())
            .unwrap_or_else(|| panic!("no lease for {shard}: {leases:?}"))
    };
    assert_eq!(checkpoint("shard-1"), SHARD_END);
    assert_eq!(checkpoint("shard-3"), SHARD_END);
    assert_eq!(
        checkpoint("shard-2"),
        TRIM_HORIZON,
        "an existing lease is left as it is"
    );
    let child = leases
        .iter()
        .find(|lease| lease.key == lease_key(stream, "shard-3"))
        .expect("shard-3");
    assert_eq!(child.parents, [lease_key(stream, "shard-1")]);
    assert_eq!(child.owner, None);
}
