//! Inputs found by fuzzing (`scripts/fuzz.sh`, see docs/RELIABILITY.md), kept
//! as regression tests: each decoder returns, and what it accepts decodes.

use std::sync::Arc;

use dynamo_cdc::decode::{decode_event_line, decode_image, decode_item, decode_record};

/// An item whose attribute `a` is `levels` lists deep: `{"a":` then
/// `levels` times `{"L":[`, `levels` times `]}`, and `}`. JSON nesting is
/// `1 + 2 * levels`; serde_json allows 128.
fn nested_image(levels: usize) -> String {
    format!(
        "{{\"a\":{}{}}}",
        "{\"L\":[".repeat(levels),
        "]}".repeat(levels)
    )
}

fn record_with_image(image: &str) -> String {
    format!(
        "{{\"eventID\":\"e\",\"eventName\":\"INSERT\",\"dynamodb\":{{\"Keys\":{{\"pk\":{{\"S\":\"a\"}}}},\"NewImage\":{image},\"SequenceNumber\":\"1\"}}}}"
    )
}

fn line_with_image(image: &str) -> String {
    format!(
        "{{\"table\":\"t\",\"op\":\"insert\",\"keys\":{{\"pk\":{{\"S\":\"a\"}}}},\"new_image\":{image},\"position\":{{\"shard\":\"s\",\"sequence\":\"1\"}}}}"
    )
}

#[test]
fn images_within_serde_depth_decode_both_ways() {
    let json = nested_image(63);
    let image = decode_image(&json).expect("image");
    assert_eq!(
        image.item().expect("item"),
        &decode_item(&json).expect("item")
    );
    let event =
        decode_record(&record_with_image(&json), &Arc::from("t"), &Arc::from("s")).expect("record");
    assert!(event.new_image.expect("new image").item().is_ok());
}

/// `decode_image` accepted a 64-level image (JSON nesting 129) that
/// `decode_item` refuses, so `Image::item()` of the accepted image fails;
/// a stream record holding it decoded too.
#[test]
fn images_deeper_than_serde_allows_are_refused_by_every_decoder() {
    let json = nested_image(64);
    assert_eq!(
        decode_image(&json).is_ok(),
        decode_item(&json).is_ok(),
        "image and item decoders disagree"
    );
    if let Ok(event) = decode_record(&record_with_image(&json), &Arc::from("t"), &Arc::from("s")) {
        assert!(
            event.new_image.expect("new image").item().is_ok(),
            "an accepted record's image does not decode"
        );
    }
}

/// A deeply nested image (100,000 levels, 800 KB) overflowed the stack of a
/// thread the size of a Tokio worker's (2 MiB) in the image scan's recursion,
/// aborting the process, through each of these decoders.
#[test]
fn deep_images_do_not_overflow_the_stack() {
    let image = nested_image(100_000);
    let inputs = [
        ("decode_image", image.clone()),
        ("decode_record", record_with_image(&image)),
        ("decode_event_line", line_with_image(&image)),
    ];
    for (decoder, input) in inputs {
        let worker = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || match decoder {
                "decode_image" => decode_image(&input).is_ok(),
                "decode_record" => decode_record(&input, &Arc::from("t"), &Arc::from("s")).is_ok(),
                _ => decode_event_line(&input).is_ok(),
            })
            .expect("thread");
        worker.join().expect(decoder);
    }
}
