#![no_main]
//! Feeds arbitrary bytes to `decode::parse_page` (a whole GetRecords response body) and each record it finds to `decode::decode_record`: no panic; the page walk agrees with serde on acceptance, record texts and iterator.

use std::sync::Arc;

use dynamo_cdc::decode::decode_record;
use dynamo_cdc_fuzz::{assert_line_round_trip, checked_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (table, shard): (Arc<str>, Arc<str>) = (Arc::from("orders"), Arc::from("shardId-1"));
    for record in checked_page(data) {
        if let Ok(event) = decode_record(&record, &table, &shard) {
            assert_line_round_trip(&event);
        }
    }
});
