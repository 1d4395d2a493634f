//! Checks shared by the fuzz targets: properties that must hold for every
//! input a decoder accepts.

use dynamo_cdc::decode::{decode_event_line, decode_image, decode_item, parse_page};
use dynamo_cdc::model::{plain_item, ChangeEvent};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A change written as a JSON Lines change (the `jsonl` and `s3` sinks'
/// format) reads back as the same change.
pub fn assert_line_round_trip(event: &ChangeEvent) {
    let mut line = Vec::new();
    event.write_json_line(&mut line);
    let text = std::str::from_utf8(&line).expect("a change line is UTF-8");
    let back = decode_event_line(text.trim_end_matches('\n'))
        .unwrap_or_else(|err| panic!("written line does not read back: {err}\n{text}"));
    assert_eq!(&back, event, "line read back as another change: {text}");
}

const JSON_WHITESPACE: [char; 4] = [' ', '\n', '\r', '\t'];

/// `raw` with an unknown member whose name holds an escape put first: the
/// same object to serde (unknown members are ignored), but one that the
/// one-pass record walks decline, so decoding it takes the serde path.
/// `None` when `raw` does not open an object with at least one member.
pub fn with_escaped_member(raw: &str) -> Option<String> {
    let rest = raw.trim_start_matches(JSON_WHITESPACE).strip_prefix('{')?;
    let next = rest.trim_start_matches(JSON_WHITESPACE);
    if next.is_empty() || next.starts_with('}') {
        return None;
    }
    Some(format!("{{\"\\u0078\":0,{rest}"))
}

/// The GetRecords page shape as serde reads it: the reference for
/// `parse_page`, whose one-pass walk must agree with it.
#[derive(Deserialize)]
struct WirePage<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Vec<&'a RawValue>,
    #[serde(rename = "NextShardIterator", default)]
    next_shard_iterator: Option<String>,
}

/// Parses `body` as a page and checks it against serde's reading: the same
/// acceptance, the same record texts, the same iterator. Returns the
/// records' texts.
pub fn checked_page(body: &[u8]) -> Vec<String> {
    let page = parse_page(body.to_vec());
    let reference = std::str::from_utf8(body)
        .ok()
        .and_then(|text| serde_json::from_str::<WirePage<'_>>(text).ok());
    match (page, reference) {
        (Ok(page), Some(wire)) => {
            let records: Vec<String> = page.records().map(str::to_owned).collect();
            let expected: Vec<&str> = wire.records.iter().map(|raw| raw.get()).collect();
            assert_eq!(records, expected, "records differ from serde's");
            assert_eq!(page.next_shard_iterator, wire.next_shard_iterator);
            assert_eq!(page.len(), records.len());
            assert_eq!(page.is_empty(), records.is_empty());
            for (index, record) in records.iter().enumerate() {
                assert_eq!(page.record(index), Some(record.as_str()));
            }
            assert_eq!(page.record(records.len()), None);
            records
        }
        (Err(_), None) => Vec::new(),
        (Ok(_), None) => panic!("page accepted, serde refuses it"),
        (Err(err), Some(_)) => panic!("serde reads the page, parse_page refuses it: {err}"),
    }
}

/// Decodes `json` as an image and as an item: both accept it or both refuse
/// it, and what they accept is the same item whichever way it is read back.
pub fn check_image(json: &str) {
    match (decode_image(json), decode_item(json)) {
        (Ok(image), Ok(item)) => {
            let decoded = image.item().expect("an accepted image decodes");
            assert_eq!(decoded, &item, "image and item differ");
            let text = image.json();
            let again = decode_item(&text).expect("the image's text decodes");
            assert_eq!(again, item, "the image's text is another item");
            let reread = decode_image(&text).expect("the image's text is an image");
            assert_eq!(reread.item().expect("decodes"), &item);
            let serialized = serde_json::to_string(&item).expect("an item serializes");
            assert_eq!(decode_item(&serialized).expect("re-encoded item"), item);
            let plain = image
                .plain_json()
                .expect("an accepted image has plain JSON");
            let value = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
            assert_eq!(
                value(&plain),
                value(&plain_item(&item)),
                "plain JSON differs"
            );
        }
        (Err(_), Err(_)) => {}
        (Ok(image), Err(err)) => panic!("image accepted, item refused ({err}): {image:?}"),
        (Err(err), Ok(item)) => panic!("item accepted, image refused ({err}): {item:?}"),
    }
}
