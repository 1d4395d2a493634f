//! A synthetic change stream shared by the benchmark drivers: inserts,
//! updates and deletes over a key space, ~600-byte items with a 38-digit
//! number, a decimal, a string set, a nested map and a customer id.

use std::sync::Arc;

use dynamo_cdc::model::{AttributeValue, ChangeEvent, Item, Number, Op, Position, SequenceNumber};

/// One synthetic change of item `rng`-chosen among `keys` items, at `sequence`.
pub fn event(rng: &mut fastrand::Rng, sequence: usize, keys: usize) -> ChangeEvent {
    let key = rng.usize(..keys);
    let op = match rng.u8(0..10) {
        0 => Op::Remove,
        1..=4 => Op::Insert,
        _ => Op::Modify,
    };
    let keys_item = Item::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("customer#{key:08}")),
        ),
        (
            "sk".to_owned(),
            AttributeValue::N(Number::parse(&(key % 7).to_string()).expect("int")),
        ),
    ]);
    let mut image = keys_item.clone();
    image.insert(
        "status".into(),
        AttributeValue::S(["new", "paid", "shipped"][rng.usize(..3)].into()),
    );
    image.insert(
        "amount".into(),
        AttributeValue::N(
            Number::parse(&format!("{}.{:02}", rng.u32(..100_000), rng.u8(..100)))
                .expect("decimal"),
        ),
    );
    image.insert(
        "big".into(),
        AttributeValue::N(Number::parse("12345678901234567890123456789012345678").expect("big")),
    );
    image.insert("note".into(), AttributeValue::S("x".repeat(300)));
    image.insert(
        "customer".into(),
        AttributeValue::S(format!("c{}", key % 1_000_000)),
    );
    image.insert(
        "tags".into(),
        AttributeValue::Ss(vec!["a".into(), "b".into(), "c".into()]),
    );
    image.insert(
        "address".into(),
        AttributeValue::M(Item::from([
            ("city".to_owned(), AttributeValue::S("Lisbon".into())),
            ("zip".to_owned(), AttributeValue::S("1100-148".into())),
        ])),
    );
    ChangeEvent {
        table: Arc::from("bench_orders"),
        op,
        keys: keys_item,
        new_image: op.is_upsert().then(|| image.clone().into()),
        old_image: (op != Op::Insert).then_some(image.into()),
        position: Position {
            shard: Arc::from("shardId-bench"),
            sequence: SequenceNumber::parse(&format!("{:021}", sequence + 1)).expect("sequence"),
        },
        version: SequenceNumber::parse(&format!("{:021}", sequence + 1)).expect("sequence"),
        approx_time_ms: Some(1_700_000_000_000 + sequence as i64),
        ttl_delete: false,
        event_id: format!("ev-{sequence}"),
        size_bytes: 600,
    }
}
