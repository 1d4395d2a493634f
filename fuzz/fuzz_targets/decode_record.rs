#![no_main]
//! Feeds arbitrary bytes to `decode::decode_record` (one DynamoDB Streams record): no panic; the one-pass walk and the serde path agree; an accepted record survives a JSON Lines round trip.

use std::sync::Arc;

use dynamo_cdc::decode::decode_record;
use dynamo_cdc_fuzz::{assert_line_round_trip, with_escaped_member};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let (table, shard): (Arc<str>, Arc<str>) = (Arc::from("orders"), Arc::from("shardId-1"));
    let result = decode_record(raw, &table, &shard);
    if let Some(serde_only) = with_escaped_member(raw) {
        let other = decode_record(&serde_only, &table, &shard);
        match (&result, &other) {
            (Ok(fast), Ok(careful)) => assert_eq!(format!("{fast:?}"), format!("{careful:?}")),
            (Err(_), Err(_)) => {}
            _ => panic!("the walk and serde disagree:\n{result:?}\n{other:?}"),
        }
    }
    match result {
        Ok(event) => assert_line_round_trip(&event),
        Err(err) => drop(err.to_string()),
    }
});
