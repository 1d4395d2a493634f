//! The fast path of image decoding: one walk over the JSON text that checks
//! its syntax (with [`Cursor`]) and its DynamoDB JSON structure, and copies
//! it compactly, without serde's per-token dispatch.
//!
//! It accepts a subset of what [`super::image::ImageSeed`] accepts and
//! writes the same text: whenever it meets something it does not handle
//! itself (an escape where the content matters, a structural error) it
//! returns `None`, and the caller decodes with `ImageSeed`, which either
//! accepts the input or names the error precisely.

use base64::Engine as _;

use super::cursor::{Cursor, Token};
use crate::model::push_json_number;

/// Checks `json` as a DynamoDB JSON item and returns it as compact text, or
/// `None` when the careful decoder must decide.
pub(crate) fn scan_image(json: &str) -> Option<String> {
    let mut cursor = Cursor::new(json);
    let compact = image(&mut cursor)?;
    cursor.at_end().then_some(compact)
}

/// Reads one image at the cursor (a map of attribute names to tagged
/// values) and returns it as compact text.
///
/// Compact input (no whitespace, no bare `{}` to rewrite) is only checked,
/// then copied in one piece; other input is walked again to be rewritten.
pub(crate) fn image(cursor: &mut Cursor<'_>) -> Option<String> {
    let start = cursor.position_of_next()?;
    let mut again = cursor.clone();
    cursor.forget_spacing();
    let mut check = Scan::new(cursor, Output::None);
    check.map()?;
    let verbatim = check.verbatim;
    if verbatim && !cursor.spaced() {
        return cursor.text(start..cursor.position()).map(str::to_owned);
    }
    // The compact image is no longer than the input, but for bare `{}`.
    let capacity = cursor.position() - start + 64;
    let mut scan = Scan::new(&mut again, Output::DynamoDb(capacity));
    scan.map()?;
    let mut out = scan.out;
    out.shrink_to_fit();
    Some(out)
}

/// Writes DynamoDB JSON item text as plain JSON (see
/// [`crate::model::plain_item`]), or `None` when the careful decoder must.
pub(crate) fn scan_plain(json: &str) -> Option<String> {
    let mut cursor = Cursor::new(json);
    let mut scan = Scan::new(&mut cursor, Output::Plain(json.len()));
    scan.map()?;
    let out = scan.out;
    cursor.at_end().then_some(out)
}

/// Attribute-name counts above which duplicates are found by sorting.
const LINEAR_NAME_CHECK: usize = 32;

/// Values nested deeper than this are left to the careful decoder. Each
/// level is at least one JSON object (two for maps and lists), so the
/// scan stays below serde_json's nesting limit of 128, which the careful
/// decoder enforces: both accept and refuse the same images, and a deeply
/// nested image cannot overflow the stack here.
const MAX_VALUE_DEPTH: usize = 48;

/// What a [`Scan`] writes.
#[derive(Clone, Copy)]
enum Output {
    /// Nothing: the text is only checked.
    None,
    /// Compact DynamoDB JSON, in a buffer of this capacity.
    DynamoDb(usize),
    /// Plain JSON (untagged values, numbers as JSON numbers, NULL as
    /// null), in a buffer of this capacity.
    Plain(usize),
}

struct Scan<'c, 'a> {
    cursor: &'c mut Cursor<'a>,
    out: String,
    /// Names of the maps being walked (outer ones first) with their
    /// [`fingerprint`]s, for duplicate checks.
    names: Vec<(u64, &'a str)>,
    /// Write anything at all.
    write: bool,
    /// Write plain JSON instead of DynamoDB JSON.
    plain: bool,
    /// No bare `{}` met (compact DynamoDB JSON is then the input as written).
    verbatim: bool,
    /// Values being walked (outer ones included).
    depth: usize,
}

impl<'c, 'a> Scan<'c, 'a> {
    fn new(cursor: &'c mut Cursor<'a>, output: Output) -> Self {
        let (write, plain, capacity) = match output {
            Output::None => (false, false, 0),
            Output::DynamoDb(capacity) => (true, false, capacity),
            Output::Plain(capacity) => (true, true, capacity),
        };
        Self {
            cursor,
            out: String::with_capacity(capacity),
            names: Vec::with_capacity(32),
            write,
            plain,
            verbatim: true,
            depth: 0,
        }
    }
}

impl<'a> Scan<'_, 'a> {
    /// Copies a string token to the output, quotes included (its escapes
    /// were checked, so the raw text is valid JSON).
    fn push(&mut self, token: &Token<'_>) {
        self.emit(token.quoted);
    }

    fn emit(&mut self, text: &str) {
        if self.write {
            self.out.push_str(text);
        }
    }

    fn emit_char(&mut self, c: char) {
        if self.write {
            self.out.push(c);
        }
    }

    /// A map of attribute names to tagged values.
    fn map(&mut self) -> Option<()> {
        self.cursor.eat(b'{')?;
        self.emit_char('{');
        let first_name = self.names.len();
        let mut names = NameSet::default();
        if !self.cursor.eat_if(b'}') {
            loop {
                let name = self.cursor.string()?;
                let plain = name.plain()?;
                if first_name < self.names.len() {
                    self.emit_char(',');
                }
                self.push(&name);
                let print = fingerprint(plain);
                names.add(&self.names[first_name..], print, plain)?;
                self.names.push((print, plain));
                self.cursor.eat(b':')?;
                self.emit_char(':');
                self.value()?;
                if self.cursor.next_or_close(b'}')? {
                    break;
                }
            }
        }
        let unique = !names.sort_check || distinct(&mut self.names[first_name..]);
        self.names.truncate(first_name);
        self.emit_char('}');
        unique.then_some(())
    }

    /// One tagged value, or `None` past [`MAX_VALUE_DEPTH`].
    fn value(&mut self) -> Option<()> {
        if self.depth >= MAX_VALUE_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = self.tagged_value();
        self.depth -= 1;
        value
    }

    /// One tagged value (`{"S":"x"}`), or DynamoDB Local's bare `{}` (an
    /// empty map, at any depth).
    fn tagged_value(&mut self) -> Option<()> {
        self.cursor.eat(b'{')?;
        if self.cursor.eat_if(b'}') {
            let empty = if self.plain { "{}" } else { r#"{"M":{}}"# };
            self.emit(empty);
            self.verbatim = false;
            return Some(());
        }
        let tag = match self.cursor.tag_key() {
            Some(tag) => tag,
            None => {
                let tag = self.cursor.string()?.plain()?;
                self.cursor.eat(b':')?;
                tag
            }
        };
        let kind = Tag::read(tag)?;
        if self.write && !self.plain {
            self.out.push_str("{\"");
            self.out.push_str(tag);
            self.out.push_str("\":");
        }
        match kind {
            Tag::S => {
                let text = self.cursor.string()?;
                self.push(&text);
            }
            Tag::N => self.scalar(Kind::Number)?,
            Tag::B => self.scalar(Kind::Binary)?,
            Tag::Bool => {
                let word = if self.cursor.peek()? == b't' {
                    "true"
                } else {
                    "false"
                };
                self.cursor.literal(word)?;
                self.emit(word);
            }
            Tag::Null => {
                self.cursor.literal("true")?;
                self.emit(if self.plain { "null" } else { "true" });
            }
            Tag::M => self.map()?,
            Tag::L => self.list()?,
            Tag::Ss => self.set(Kind::String)?,
            Tag::Ns => self.set(Kind::Number)?,
            Tag::Bs => self.set(Kind::Binary)?,
        }
        self.cursor.eat(b'}')?;
        if !self.plain {
            self.emit_char('}');
        }
        Some(())
    }

    /// A checked string scalar (number text or base64); a number is a JSON
    /// number in plain JSON.
    fn scalar(&mut self, kind: Kind) -> Option<()> {
        let token = self.cursor.string()?;
        let text = token.plain()?;
        if !kind.accepts(text) {
            return None;
        }
        if self.write && self.plain && matches!(kind, Kind::Number) {
            push_json_number(&mut self.out, text);
        } else {
            self.push(&token);
        }
        Some(())
    }

    fn list(&mut self) -> Option<()> {
        self.cursor.eat(b'[')?;
        self.emit_char('[');
        if !self.cursor.eat_if(b']') {
            loop {
                self.value()?;
                if self.cursor.next_or_close(b']')? {
                    break;
                }
                self.emit_char(',');
            }
        }
        self.emit_char(']');
        Some(())
    }

    fn set(&mut self, kind: Kind) -> Option<()> {
        self.cursor.eat(b'[')?;
        self.emit_char('[');
        if !self.cursor.eat_if(b']') {
            loop {
                match kind {
                    Kind::String => {
                        let token = self.cursor.string()?;
                        self.push(&token);
                    }
                    other => self.scalar(other)?,
                }
                if self.cursor.next_or_close(b']')? {
                    break;
                }
                self.emit_char(',');
            }
        }
        self.emit_char(']');
        Some(())
    }
}

/// A DynamoDB JSON type tag.
#[derive(Clone, Copy)]
enum Tag {
    S,
    N,
    B,
    Bool,
    Null,
    M,
    L,
    Ss,
    Ns,
    Bs,
}

impl Tag {
    /// The tag written as `text`, if it is one.
    fn read(text: &str) -> Option<Self> {
        Some(match text.as_bytes() {
            b"S" => Self::S,
            b"N" => Self::N,
            b"B" => Self::B,
            b"BOOL" => Self::Bool,
            b"NULL" => Self::Null,
            b"M" => Self::M,
            b"L" => Self::L,
            b"SS" => Self::Ss,
            b"NS" => Self::Ns,
            b"BS" => Self::Bs,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    String,
    Number,
    Binary,
}

impl Kind {
    fn accepts(self, text: &str) -> bool {
        match self {
            Kind::String => true,
            Kind::Number => is_number(text),
            Kind::Binary => {
                let mut scratch = [0u8; 512];
                let engine = base64::engine::general_purpose::STANDARD;
                if text.len() / 4 * 3 <= scratch.len() {
                    engine.decode_slice(text, &mut scratch).is_ok()
                } else {
                    engine.decode(text).is_ok()
                }
            }
        }
    }
}

/// True when `text` is DynamoDB number text: [`crate::model::Number::parse`]'s grammar
/// (optional sign, digits with an optional fraction, at least one digit,
/// optional exponent with digits), checked without building a `Number`.
fn is_number(text: &str) -> bool {
    fn digits(bytes: &[u8], from: usize) -> usize {
        bytes.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    }
    let bytes = text.as_bytes();
    let mut at = usize::from(matches!(bytes.first(), Some(b'-' | b'+')));
    let whole = digits(bytes, at);
    at += whole;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits(bytes, at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    if let Some(b'e' | b'E') = bytes.get(at) {
        at += 1;
        if let Some(b'-' | b'+') = bytes.get(at) {
            at += 1;
        }
        let exponent = digits(bytes, at);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == bytes.len()
}

/// A cheap summary of a name (its length and first, middle and last
/// bytes): equal names have equal fingerprints, so names are compared only
/// when their fingerprints are.
fn fingerprint(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let byte = |at: Option<usize>| u64::from(at.and_then(|at| bytes.get(at)).copied().unwrap_or(0));
    let last = bytes.len().checked_sub(1);
    bytes.len() as u64 | byte(Some(0)) << 32 | byte(Some(bytes.len() / 2)) << 40 | byte(last) << 48
}

/// The attribute names of one map met so far, as one bit per name in 256
/// (picked by its [`fingerprint`]): a name is compared with the earlier
/// ones only when its bit is already set.
#[derive(Default)]
struct NameSet {
    bits: [u64; 4],
    /// Set when a possible repeat was met among more than
    /// [`LINEAR_NAME_CHECK`] names: all of them are then checked by
    /// sorting, once, at the end of the map.
    sort_check: bool,
}

impl NameSet {
    /// Adds `name` (fingerprint `print`) to a map whose earlier names are
    /// `earlier`; `None` when it repeats one of them.
    fn add(&mut self, earlier: &[(u64, &str)], print: u64, name: &str) -> Option<()> {
        let bit = (print.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if self.bits[word] & mask == 0 {
            self.bits[word] |= mask;
            return Some(());
        }
        if earlier.len() >= LINEAR_NAME_CHECK {
            self.sort_check = true;
            return Some(());
        }
        let repeated = earlier
            .iter()
            .any(|(other_print, other)| *other_print == print && *other == name);
        (!repeated).then_some(())
    }
}

/// True when no name repeats (reorders `names` when there are many).
fn distinct(names: &mut [(u64, &str)]) -> bool {
    if names.len() <= LINEAR_NAME_CHECK {
        names.iter().enumerate().all(|(i, (print, name))| {
            names[..i]
                .iter()
                .all(|(other_print, other)| other_print != print || other != name)
        })
    } else {
        names.sort_unstable_by(|a, b| a.1.cmp(b.1));
        names.windows(2).all(|pair| pair[0].1 != pair[1].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_image;
    use crate::model::Number;

    #[test]
    fn compact_images_are_copied_as_written() {
        let json =
            r#"{"s":{"S":"a \"q\" é"},"m":{"M":{"l":{"L":[{"N":"1"},{"M":{}}]}}},"e":{"L":[]}}"#;
        assert_eq!(scan_image(json).as_deref(), Some(json));
        let mut cursor = Cursor::new(r#" {"a":{"S":"x"}} ,"#);
        assert_eq!(image(&mut cursor).as_deref(), Some(r#"{"a":{"S":"x"}}"#));
        assert!(
            cursor.eat(b',').is_some(),
            "the cursor is left after the image"
        );
    }

    #[test]
    fn spaced_or_bare_images_are_rewritten_and_the_cursor_still_moves_on() {
        let mut cursor = Cursor::new(r#"{"a" : {"M":{}},"b":{}},"#);
        assert_eq!(
            image(&mut cursor).as_deref(),
            Some(r#"{"a":{"M":{}},"b":{"M":{}}}"#)
        );
        assert!(cursor.eat(b',').is_some() && cursor.at_end());
    }

    #[test]
    fn names_differ_when_their_fingerprints_collide_or_not() {
        let long = "abcde";
        let same_ends = "aXcYe";
        assert_eq!(fingerprint(long), fingerprint(same_ends));
        assert!(distinct(&mut [
            (fingerprint(long), long),
            (fingerprint(same_ends), same_ends)
        ]));
        assert!(!distinct(&mut [
            (fingerprint(long), long),
            (fingerprint(long), long)
        ]));
        assert!(distinct(&mut [
            (fingerprint(""), ""),
            (fingerprint("a"), "a")
        ]));
    }

    proptest::proptest! {
        /// The allocation-free number check accepts exactly what
        /// `Number::parse` accepts.
        #[test]
        fn number_check_matches_number_parse(text in "[-+0-9.eE]{0,8}|[-+]?[0-9]{0,3}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{0,3})?x?") {
            proptest::prop_assert_eq!(is_number(&text), Number::parse(&text).is_ok(), "{}", text);
        }
    }

    #[test]
    fn writes_what_the_careful_decoder_writes() {
        for json in [
            r#"{}"#,
            r#"{"top":{},"l":{"L":[{}]},"m":{"M":{"e":{}}}}"#,
            r#"{ "s" : {"S":"a \"q\" é"}, "n":{"N":"-1.50E+3"},
                "b":{"B":"AP8="}, "t":{"BOOL":true}, "f":{"BOOL":false}, "z":{"NULL":true},
                "m":{"M":{"l":{"L":[{"N":"1"},{},{"SS":["x","y"]}]}}},
                "ns":{"NS":["1","2.5"]}, "bs":{"BS":["AQ==",""]}, "e":{"S":""}, "el":{"L":[]} }"#,
        ] {
            let fast = scan_image(json).expect("fast path");
            assert_eq!(fast, decode_image(json).unwrap().json(), "{json}");
        }
    }

    #[test]
    fn leaves_errors_and_escaped_content_to_the_careful_decoder() {
        for json in [
            r#"{"a":{"N":"x"}}"#,
            r#"{"a":{"B":"%%"}}"#,
            r#"{"a":{"NULL":false}}"#,
            r#"{"a":{"S":"x","N":"1"}}"#,
            r#"{"a":{"S":"x"},"a":{"S":"y"}}"#,
            r#"{"a":{"Q":"x"}}"#,
            r#"{"a":{"S":1}}"#,
            r#"{"a\u0062":{"S":"x"}}"#,
            r#"{"a":{"N":"\u0031"}}"#,
        ] {
            assert_eq!(scan_image(json), None, "{json}");
        }
    }

    #[test]
    fn plain_json_matches_the_item_form() {
        let json = r#"{"s":{"S":"a\"b"},"n":{"N":"-1.50E+3"},"z":{"NULL":true},"t":{"BOOL":false},
            "m":{"M":{"l":{"L":[{"N":".5"},{},{"SS":["x"]}]}}},"ns":{"NS":["1","+2"]},"b":{"B":"AP8="}}"#;
        let plain: serde_json::Value = serde_json::from_str(&scan_plain(json).unwrap()).unwrap();
        let item = crate::decode::decode_item(json).unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&crate::model::plain_item(&item)).unwrap();
        assert_eq!(plain, expected);
        assert_eq!(plain["m"]["l"][0], serde_json::json!(0.5));
        assert!(plain["z"].is_null());
    }

    #[test]
    fn many_names_are_checked_by_sorting() {
        let names: Vec<String> = (0..100)
            .map(|i| format!("\"a{i}\":{{\"N\":\"{i}\"}}"))
            .collect();
        let json = format!("{{{}}}", names.join(","));
        assert!(scan_image(&json).is_some());
        let twice = format!("{{{},\"a7\":{{\"S\":\"x\"}}}}", names.join(","));
        assert_eq!(scan_image(&twice), None);
    }
}
