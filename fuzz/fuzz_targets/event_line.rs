#![no_main]
//! Feeds arbitrary bytes to `decode::decode_event_line` (one line of a JSON Lines change file, as `replay` reads it): no panic; an accepted line written again reads back as the same change.

use dynamo_cdc::decode::decode_event_line;
use dynamo_cdc_fuzz::assert_line_round_trip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    match decode_event_line(line) {
        Ok(event) => {
            assert_line_round_trip(&event);
            drop(serde_json::to_string(&event));
        }
        Err(err) => drop(err.to_string()),
    }
});
