#![no_main]
//! Feeds arbitrary bytes to `decode::kinesis::decode_kinesis_record` (the data of one Kinesis record) and `decode::kinesis_format_record`: no panic; the one-pass walk and the serde path agree; an accepted change survives a JSON Lines round trip.

use std::sync::Arc;

use dynamo_cdc::decode::kinesis::{decode_kinesis_record, KinesisRecord};
use dynamo_cdc::decode::{kinesis_format_record, record_keys};
use dynamo_cdc_fuzz::{assert_line_round_trip, with_escaped_member};
use libfuzzer_sys::fuzz_target;

const SEQUENCE: &str = "49590338271490256608559692538361571095921575989136588898";

/// Every table is followed but those whose name starts with `other`.
fn followed(name: &str) -> Option<Arc<str>> {
    (!name.starts_with("other")).then(|| Arc::from(name))
}

fuzz_target!(|data: &[u8]| {
    let shard: Arc<str> = Arc::from("shardId-000000000000");
    let result = decode_kinesis_record(data, SEQUENCE, &shard, followed);
    match &result {
        Ok(KinesisRecord::Change { event, .. }) => assert_line_round_trip(event),
        Ok(KinesisRecord::OtherTable(name)) => assert!(followed(name).is_none()),
        Err(failure) => drop(failure.error.to_string()),
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(serde_only) = with_escaped_member(text) {
        let other = decode_kinesis_record(serde_only.as_bytes(), SEQUENCE, &shard, followed);
        match (&result, &other) {
            (Ok(fast), Ok(careful)) => assert_eq!(format!("{fast:?}"), format!("{careful:?}")),
            (Err(_), Err(_)) => {}
            _ => panic!("the walk and serde disagree:\n{result:?}\n{other:?}"),
        }
    }
    if let Some(record) = kinesis_format_record(text) {
        if record.kinesis_sequence.is_none() {
            assert_eq!(record.json, text, "a bare record is kept as it came");
        }
        drop(record_keys(&record.json));
    }
});
