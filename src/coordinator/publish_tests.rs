//! Unit tests of publishing: acknowledgement counts, the transform stage
//! and routing in front of the sinks.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::model::{AttributeValue, Item, Op, Position};
use crate::transform::{FilterSpec, SinkRoute, Stage, TransformConfig};

fn key() -> ShardKey {
    ShardKey {
        stream: Arc::from("s"),
        shard: Arc::from("a"),
    }
}

fn seq(n: u64) -> SequenceNumber {
    SequenceNumber::parse(&n.to_string()).unwrap()
}

#[tokio::test]
async fn empty_chunks_advance_without_the_sinks() {
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from("t"), None);
    let (tx, mut rx) = mpsc::channel(4);
    let sinks = Fanout::direct(vec![("one".to_owned(), tx)]);
    let empty = Outgoing::events(Arc::from("t"), Vec::new());
    publish(&tracker, &sinks, &key(), seq(5), empty)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err());
    assert_eq!(tracker.in_flight(), 0);
    let updates = tracker.take_updates();
    assert_eq!(updates[0].sequence, Some(seq(5)));
}

#[tokio::test]
async fn a_stopped_sink_is_named() {
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from("t"), None);
    let (tx, rx) = mpsc::channel(4);
    drop(rx);
    let sinks = Fanout::direct(vec![("replica".to_owned(), tx)]);
    let sweep = Outgoing {
        sweep_below: Some(seq(1)),
        ..Outgoing::events(Arc::from("t"), Vec::new())
    };
    let err = publish(&tracker, &sinks, &key(), seq(1), sweep)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("sink replica stopped"), "{err}");
}

fn change(n: u64, status: &str) -> ChangeEvent {
    let keys = Item::from([("id".into(), AttributeValue::S(format!("i{n}")))]);
    let mut image = keys.clone();
    image.insert("status".into(), AttributeValue::S(status.into()));
    image.insert("secret".into(), AttributeValue::S("s".into()));
    ChangeEvent {
        table: Arc::from("orders"),
        op: Op::Insert,
        keys,
        new_image: Some(image.into()),
        old_image: None,
        position: Position {
            shard: Arc::from("a"),
            sequence: seq(n),
        },
        version: seq(n),
        approx_time_ms: None,
        ttl_delete: false,
        event_id: String::new(),
        size_bytes: 10,
    }
}

fn paid_only() -> Stage {
    let filter =
        FilterSpec::Text(r#"{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}"#.into());
    Stage::compile(&[filter], &[]).unwrap()
}

fn without_secret() -> Stage {
    let drop = TransformConfig::Drop {
        attributes: vec!["secret".into()],
    };
    Stage::compile(&[], &[drop]).unwrap()
}

fn route(name: &str, tables: Option<&[&str]>, stage: Stage) -> SinkRoute {
    SinkRoute {
        name: name.into(),
        tables: tables.map(|t| t.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>()),
        stage,
    }
}

/// Publishes `page` of table `orders` as the chunk ending at `last`.
async fn publish_orders(
    tracker: &Arc<AckTracker>,
    fanout: &Fanout,
    last: u64,
    page: Vec<ChangeEvent>,
) {
    let outgoing = Outgoing::events(Arc::from("orders"), page);
    publish(tracker, fanout, &key(), seq(last), outgoing)
        .await
        .unwrap();
}

fn tracker_for(table: &str) -> Arc<AckTracker> {
    let tracker = AckTracker::new();
    tracker.open_shard(key(), Arc::from(table), None);
    tracker
}

#[tokio::test]
async fn filtered_changes_are_acknowledged_without_reaching_a_sink() {
    let tracker = tracker_for("orders");
    let (tx, mut rx) = mpsc::channel(4);
    let routes = Routes::new(
        HashMap::from([("orders".to_owned(), paid_only())]),
        HashMap::new(),
        vec![route("one", None, Stage::default())],
    );
    let fanout = Fanout::new(vec![("one".to_owned(), tx)], routes);
    let page = vec![change(1, "new"), change(2, "paid"), change(3, "new")];
    publish_orders(&tracker, &fanout, 3, page).await;
    let chunk = rx.try_recv().unwrap();
    assert_eq!(chunk.events.len(), 1);
    assert_eq!(chunk.bytes, 10);
    let none_paid = vec![change(4, "new")];
    publish_orders(&tracker, &fanout, 4, none_paid).await;
    assert!(rx.try_recv().is_err());
    chunk.ack.ack().unwrap();
    let updates = tracker.take_updates();
    assert_eq!(updates[0].sequence, Some(seq(4)));
    assert_eq!(tracker.in_flight(), 0);
}

#[tokio::test]
async fn routes_and_sink_stages_give_each_sink_its_own_view() {
    let tracker = tracker_for("orders");
    let (full_tx, mut full_rx) = mpsc::channel(4);
    let (slim_tx, mut slim_rx) = mpsc::channel(4);
    let (other_tx, mut other_rx) = mpsc::channel(4);
    let routes = Routes::new(
        HashMap::new(),
        HashMap::new(),
        vec![
            route("full", None, Stage::default()),
            route("slim", Some(&["orders"]), without_secret()),
            route("other", Some(&["customers"]), Stage::default()),
        ],
    );
    let fanout = Fanout::new(
        vec![
            ("full".to_owned(), full_tx),
            ("slim".to_owned(), slim_tx),
            ("other".to_owned(), other_tx),
        ],
        routes,
    );
    let page = vec![change(1, "paid")];
    publish_orders(&tracker, &fanout, 1, page).await;
    let full = full_rx.try_recv().unwrap();
    let slim = slim_rx.try_recv().unwrap();
    assert!(
        other_rx.try_recv().is_err(),
        "a sink routed elsewhere got the chunk"
    );
    let attributes = |chunk: &Chunk| -> Vec<String> {
        let image = chunk.events[0].new_image.as_ref().unwrap();
        image.item().unwrap().keys().cloned().collect()
    };
    assert_eq!(attributes(&full), ["id", "secret", "status"]);
    assert_eq!(attributes(&slim), ["id", "status"]);
    full.ack.ack().unwrap();
    assert!(
        tracker.take_updates().is_empty(),
        "one of two sinks acknowledged"
    );
    slim.ack.ack().unwrap();
    assert_eq!(tracker.take_updates()[0].sequence, Some(seq(1)));
}

#[tokio::test]
async fn a_sink_whose_stage_drops_everything_acknowledges_at_once() {
    let tracker = tracker_for("orders");
    let (tx, mut rx) = mpsc::channel(4);
    let routes = Routes::new(
        HashMap::new(),
        HashMap::new(),
        vec![route("paid", None, paid_only())],
    );
    let fanout = Fanout::new(vec![("paid".to_owned(), tx)], routes);
    let page = vec![change(1, "new")];
    publish_orders(&tracker, &fanout, 1, page).await;
    assert!(rx.try_recv().is_err());
    assert_eq!(tracker.take_updates()[0].sequence, Some(seq(1)));
}
