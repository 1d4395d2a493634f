//! The fast path of record decoding: one walk over a stream record with
//! [`Cursor`], images copied as compact text on the way (see
//! [`crate::model::json::scan`]).
//!
//! It handles the common shape (known fields once each, escape-free
//! names and header strings, S/N/B keys) and returns `None` for anything
//! else, including every error: [`super::decode_record`] then reads the
//! record with serde, which accepts what is valid and names what is not.

use base64::Engine as _;

use super::record::Parts;
use crate::model::json::cursor::Cursor;
use crate::model::json::scan::image;
use crate::model::{AttributeValue, Image, Item, Number};

/// Reads a DynamoDB Streams record's parts, or `None` when the serde path
/// must decide.
pub(super) fn scan_record(raw: &str) -> Option<Parts<'_>> {
    let scanned = scan_change(raw)?;
    let sequence = scanned.sequence?;
    Some(Parts {
        sequence,
        ..scanned.parts
    })
}

/// A change record as the walk read it: the parts (with an empty sequence
/// number) and the fields only some formats have.
pub(super) struct Scanned<'a> {
    /// Everything but the sequence number.
    pub(super) parts: Parts<'a>,
    /// `dynamodb.SequenceNumber` (DynamoDB Streams).
    pub(super) sequence: Option<&'a str>,
    /// `tableName` (Kinesis).
    pub(super) table: Option<&'a str>,
    /// `dynamodb.ApproximateCreationDateTimePrecision` (Kinesis).
    pub(super) precision: Option<&'a str>,
}

/// Reads a change record of either format (DynamoDB Streams, or the
/// Kinesis streaming destination's), or `None` when the serde path must decide.
pub(super) fn scan_change(raw: &str) -> Option<Scanned<'_>> {
    let mut cursor = Cursor::new(raw);
    let mut table = None;
    let mut seen = Seen::default();
    let (mut event_id, mut event_name, mut aws_region) = (None, None, None);
    let (mut identity_type, mut identity_principal) = (None, None);
    let mut stream = None;
    cursor.eat(b'{')?;
    if cursor.eat_if(b'}') {
        return None;
    }
    loop {
        let name = cursor.string()?.plain()?;
        cursor.eat(b':')?;
        match name {
            "eventID" => {
                seen.once(0)?;
                event_id = Some(cursor.string()?.plain()?);
            }
            "eventName" => {
                seen.once(1)?;
                event_name = Some(cursor.string()?.plain()?);
            }
            "awsRegion" => {
                seen.once(2)?;
                aws_region = optional_text(&mut cursor)?;
            }
            "userIdentity" => {
                seen.once(3)?;
                if !null(&mut cursor) {
                    (identity_type, identity_principal) = user_identity(&mut cursor)?;
                }
            }
            "dynamodb" => {
                seen.once(4)?;
                stream = Some(stream_record(&mut cursor)?);
            }
            "tableName" => {
                seen.once(5)?;
                table = Some(cursor.string()?.plain()?);
            }
            _ => cursor.skip_value(1)?,
        }
        if cursor.next_or_close(b'}')? {
            break;
        }
    }
    if !cursor.at_end() {
        return None;
    }
    let stream = stream?;
    Some(Scanned {
        parts: Parts {
            event_id: event_id?.to_owned(),
            event_name: event_name?,
            aws_region,
            identity_type,
            identity_principal,
            approx_seconds: stream.approx_seconds,
            keys: stream.keys?,
            new_image: stream.new_image,
            old_image: stream.old_image,
            sequence: "",
            size_bytes: stream.size_bytes,
            version: None,
        },
        sequence: stream.sequence,
        table,
        precision: stream.precision,
    })
}

/// Which known fields of one object were read (serde refuses a field twice).
#[derive(Default)]
struct Seen(u32);

impl Seen {
    fn once(&mut self, field: u32) -> Option<()> {
        let bit = 1 << field;
        (self.0 & bit == 0).then(|| self.0 |= bit)
    }
}

/// Consumes `null` if it comes next.
fn null(cursor: &mut Cursor<'_>) -> bool {
    cursor.peek() == Some(b'n') && cursor.literal("null").is_some()
}

/// An escape-free string or null.
fn optional_text<'a>(cursor: &mut Cursor<'a>) -> Option<Option<&'a str>> {
    if null(cursor) {
        return Some(None);
    }
    cursor.string()?.plain().map(Some)
}

/// `userIdentity`: (`Type`, `PrincipalId`), in either casing.
type Identity<'a> = (Option<&'a str>, Option<&'a str>);

fn user_identity<'a>(cursor: &mut Cursor<'a>) -> Option<Identity<'a>> {
    let mut seen = Seen::default();
    let (mut kind, mut principal) = (None, None);
    cursor.eat(b'{')?;
    if cursor.eat_if(b'}') {
        return Some((None, None));
    }
    loop {
        let name = cursor.string()?.plain()?;
        cursor.eat(b':')?;
        match name {
            "Type" | "type" => {
                seen.once(0)?;
                kind = optional_text(cursor)?;
            }
            "PrincipalId" | "principalId" => {
                seen.once(1)?;
                principal = optional_text(cursor)?;
            }
            _ => cursor.skip_value(2)?,
        }
        if cursor.next_or_close(b'}')? {
            return Some((kind, principal));
        }
    }
}

/// The `dynamodb` object of a record.
#[derive(Default)]
struct StreamRecord<'a> {
    approx_seconds: Option<f64>,
    keys: Option<Item>,
    new_image: Option<Image>,
    old_image: Option<Image>,
    sequence: Option<&'a str>,
    precision: Option<&'a str>,
    size_bytes: u64,
}

fn stream_record<'a>(cursor: &mut Cursor<'a>) -> Option<StreamRecord<'a>> {
    let mut seen = Seen::default();
    let mut record = StreamRecord::default();
    cursor.eat(b'{')?;
    if cursor.eat_if(b'}') {
        return Some(record);
    }
    loop {
        let name = cursor.string()?.plain()?;
        cursor.eat(b':')?;
        match name {
            "ApproximateCreationDateTime" => {
                seen.once(0)?;
                if !null(cursor) {
                    record.approx_seconds = Some(seconds(cursor.number()?)?);
                }
            }
            "Keys" => {
                seen.once(1)?;
                record.keys = Some(keys(cursor)?);
            }
            "NewImage" => {
                seen.once(2)?;
                record.new_image = optional_image(cursor)?;
            }
            "OldImage" => {
                seen.once(3)?;
                record.old_image = optional_image(cursor)?;
            }
            "SequenceNumber" => {
                seen.once(4)?;
                record.sequence = Some(cursor.string()?.plain()?);
            }
            "ApproximateCreationDateTimePrecision" => {
                seen.once(6)?;
                record.precision = Some(cursor.string()?.plain()?);
            }
            "SizeBytes" => {
                seen.once(5)?;
                let digits = cursor.number()?;
                if !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                record.size_bytes = digits.parse().ok()?;
            }
            _ => cursor.skip_value(2)?,
        }
        if cursor.next_or_close(b'}')? {
            return Some(record);
        }
    }
}

/// A JSON number as the serde path reads it into an `f64`: whole seconds of
/// up to 15 digits exactly (as serde_json does), anything else by serde_json.
fn seconds(number: &str) -> Option<f64> {
    if number.len() <= 15 && number.bytes().all(|b| b.is_ascii_digit()) {
        return number.parse::<u64>().ok().map(|whole| whole as f64);
    }
    serde_json::from_str(number).ok()
}

fn optional_image(cursor: &mut Cursor<'_>) -> Option<Option<Image>> {
    if null(cursor) {
        return Some(None);
    }
    image(cursor).map(|text| Some(Image::from_validated_json(text)))
}

/// Key attributes: S, N or B values with escape-free text.
fn keys(cursor: &mut Cursor<'_>) -> Option<Item> {
    let mut keys = Item::new();
    cursor.eat(b'{')?;
    if cursor.eat_if(b'}') {
        return Some(keys);
    }
    loop {
        let name = cursor.string()?.plain()?;
        cursor.eat(b':')?;
        cursor.eat(b'{')?;
        let tag = cursor.string()?.plain()?;
        cursor.eat(b':')?;
        let text = cursor.string()?.plain()?;
        let value = match tag {
            "S" => AttributeValue::S(text.to_owned()),
            "N" => AttributeValue::N(Number::parse(text).ok()?),
            "B" => AttributeValue::B(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()?,
            ),
            _ => return None,
        };
        cursor.eat(b'}')?;
        if keys.insert(name.to_owned(), value).is_some() {
            return None;
        }
        if cursor.next_or_close(b'}')? {
            return Some(keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decode::DecodeError;

    const RECORD: &str = r#"{"awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1763800000.5,"Keys":{"pk":{"S":"a"},"sk":{"N":"4"}},"NewImage":{"pk":{"S":"a"},"sk":{"N":"4"},"b":{"B":"AP8="}},"SequenceNumber":"000000000000000000100","SizeBytes":41,"StreamViewType":"NEW_AND_OLD_IMAGES"},"eventID":"e1","eventName":"INSERT","eventSource":"aws:dynamodb","eventVersion":"1.1","userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"}}"#;

    fn both(
        raw: &str,
    ) -> (
        Option<Result<String, DecodeError>>,
        Result<String, DecodeError>,
    ) {
        let (table, shard) = (Arc::from("t"), Arc::from("s"));
        let fast =
            scan_record(raw).map(|parts| parts.finish(&table, &shard).map(|e| format!("{e:?}")));
        let careful = crate::decode::record::decode_record_careful(raw, &table, &shard)
            .map(|e| format!("{e:?}"));
        (fast, careful)
    }

    #[test]
    fn reads_the_common_shape_as_the_serde_path_does() {
        let (fast, careful) = both(RECORD);
        assert_eq!(fast.expect("fast path taken"), careful);
    }

    #[test]
    fn leaves_the_unusual_to_the_serde_path() {
        for raw in [
            RECORD.replace("\"eventID\":\"e1\"", "\"eventID\":\"e\\u0031\""),
            RECORD.replace("\"SizeBytes\":41", "\"SizeBytes\":41,\"SizeBytes\":42"),
            RECORD.replace("\"SizeBytes\":41", "\"SizeBytes\":-1"),
            RECORD.replace("\"SizeBytes\":41", "\"SizeBytes\":4.1"),
            RECORD.replace("{\"S\":\"a\"},\"sk\"", "{\"SS\":[\"a\"]},\"sk\""),
            RECORD.replace("\"principalId\"", "\"PrincipalId\":null,\"principalId\""),
            RECORD.replace("\"SequenceNumber\":\"000000000000000000100\",", ""),
            format!("{RECORD} x"),
        ] {
            let (fast, careful) = both(&raw);
            assert!(fast.is_none(), "fast path took {raw}");
            let _ = careful;
        }
    }

    /// A record exercising every type, escapes and DynamoDB Local's bare `{}`
    /// (nested, and as a top-level attribute of both images).
    const RICH: &str = r#"{"eventID":"e2","eventName":"MODIFY","dynamodb":{"Keys":{"pk":{"S":"k\u00e9y"},"sk":{"B":"AQI="}},"NewImage":{"e":{},"s":{"S":"a \"q\" \\ \n é"},"n":{"N":"-1.5E+3"},"b":{"B":"AP8="},"t":{"BOOL":true},"z":{"NULL":true},"m":{"M":{"l":{"L":[{"N":"1"},{},{"SS":["x","y"]}]}}},"ns":{"NS":["1","2.5"]},"bs":{"BS":["AQ=="]}},"OldImage":{"s":{"S":""},"e":{}},"SequenceNumber":"000000000000000000200","SizeBytes":99},"awsRegion":null}"#;

    proptest::proptest! {
        /// Whatever one changed character does to a record, the fast path
        /// either leaves it to serde or reads exactly what serde reads.
        #[test]
        fn one_changed_character_never_makes_the_paths_disagree(
            base in proptest::sample::select(vec![RECORD, RICH]),
            at in proptest::prelude::any::<proptest::sample::Index>(),
            with in proptest::sample::select(vec![
                '{', '}', '[', ']', '"', ':', ',', ' ', '\\', 'n', 'u', 'S', 'N', 'B', 'L', 'M',
                '0', '1', '9', '.', 'e', '-', '+', 'x', 't', 'f', 'é', '\u{1}',
            ]),
        ) {
            let mut chars: Vec<char> = base.chars().collect();
            let at = at.index(chars.len());
            chars[at] = with;
            let raw: String = chars.into_iter().collect();
            let (fast, careful) = both(&raw);
            if let Some(fast) = fast {
                proptest::prop_assert_eq!(fast, careful, "{}", raw);
            }
        }
    }

    #[test]
    fn seconds_are_read_as_serde_json_reads_them() {
        for number in [
            "0",
            "1763800000",
            "999999999999999",
            "9999999999999999",
            "18446744073709551616",
            "1763800000.5",
            "-1",
            "1e3",
        ] {
            let theirs: f64 = serde_json::from_str(number).unwrap();
            assert_eq!(seconds(number), Some(theirs), "{number}");
        }
    }

    #[test]
    fn a_top_level_bare_empty_map_takes_the_fast_path() {
        let raw = RECORD.replace(r#""b":{"B":"AP8="}"#, r#""b":{}"#);
        let (fast, careful) = both(&raw);
        assert_eq!(fast.expect("fast path"), careful);
        let event = scan_record(&raw)
            .expect("fast path")
            .finish(&Arc::from("t"), &Arc::from("s"))
            .expect("decodes");
        let image = event.new_image.expect("new image");
        assert_eq!(
            image.item().expect("item")["b"],
            AttributeValue::M(Item::new())
        );
    }

    #[test]
    fn the_rich_record_takes_the_fast_path_where_it_can() {
        // Escaped key text sends it to serde; both agree.
        let (fast, careful) = both(RICH);
        assert!(careful.is_ok(), "{careful:?}");
        if let Some(fast) = fast {
            assert_eq!(fast, careful);
        }
        let plain = RICH.replace("k\\u00e9y", "key");
        let (fast, careful) = both(&plain);
        assert_eq!(fast.expect("fast path"), careful);
    }
}
