#![no_main]
//! Feeds arbitrary lines to one `decode::RecordDecoder` (mixed DynamoDB Streams and Kinesis-format records, as a replay file holds) and to `decode::record_keys`: no panic; every accepted record survives a JSON Lines round trip.

use std::sync::Arc;

use dynamo_cdc::decode::{record_keys, RecordDecoder};
use dynamo_cdc_fuzz::assert_line_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut decoder = RecordDecoder::new(&Arc::from("orders"), &Arc::from("replay:input"));
    for raw in text.split('\n') {
        match decoder.decode(raw) {
            Ok(event) => assert_line_round_trip(&event),
            Err(rejected) => drop(rejected.reason.to_string()),
        }
        if let Some(keys) = record_keys(raw) {
            assert!(!keys.is_empty(), "record_keys returned no key");
        }
    }
});
