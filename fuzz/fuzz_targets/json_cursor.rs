#![no_main]
//! Feeds arbitrary bytes, as a record of a page, a page iterator, a string value and an attribute name, to `decode::parse_page` and `decode::decode_image`, whose one-pass walks use the strict JSON token reader: each must agree with serde_json.

use dynamo_cdc_fuzz::{check_image, checked_page};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let wrap = |before: &[u8], after: &[u8]| [before, data, after].concat();
    checked_page(&wrap(b"{\"Records\":[", b"]}"));
    checked_page(&wrap(b"{\"NextShardIterator\":", b",\"Records\":[]}"));
    checked_page(&wrap(b"{\"Other\":", b"}"));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_image(&format!("{{\"a\":{{\"S\":{text}}}}}"));
    check_image(&format!("{{{text}:{{\"NULL\":true}}}}"));
    check_image(&format!("{{\"a\":{{\"L\":[{text}]}}}}"));
});
