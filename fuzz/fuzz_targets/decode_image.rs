#![no_main]
//! Feeds arbitrary bytes to `decode::decode_image` (the image scan and its serde fallback), `decode::decode_item` and `decode::decode_value`: no panic; image and item decoders accept the same inputs and read the same item; what decodes re-encodes to the same value.

use dynamo_cdc::decode::decode_value;
use dynamo_cdc::model::Image;
use dynamo_cdc_fuzz::check_image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    check_image(json);
    assert_eq!(
        Image::parse(json).is_ok(),
        dynamo_cdc::decode::decode_image(json).is_ok()
    );
    if let Ok(value) = decode_value(json) {
        let text = serde_json::to_string(&value).expect("a value serializes");
        assert_eq!(
            decode_value(&text).expect("re-encoded value decodes"),
            value
        );
    }
});
