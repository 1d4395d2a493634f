//! A strict, allocation-free reader of JSON tokens for the decoder's fast
//! path (see [`super::record_scan`]). It checks everything serde_json checks
//! (string escapes and surrogate pairs, control characters, number grammar,
//! nesting depth) and answers `None` where serde_json would fail; the
//! callers then run the serde-based decoder, which names the error.

/// Nesting serde_json allows before it refuses the input.
const MAX_DEPTH: usize = 128;

/// A position in JSON text.
#[derive(Clone)]
pub(super) struct Cursor<'a> {
    json: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Whether whitespace was skipped since [`Cursor::forget_spacing`].
    spaced: bool,
}

/// A string token: the text between its quotes, as written.
pub(super) struct Token<'a> {
    /// The raw text (escapes not resolved).
    pub(super) raw: &'a str,
    /// The raw text with its quotes: the token as written.
    pub(super) quoted: &'a str,
    /// True when the text holds escapes (`raw` is then not the content).
    pub(super) escaped: bool,
}

impl<'a> Token<'a> {
    /// The content, when it is the raw text (no escapes).
    pub(super) fn plain(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `json`.
    pub(super) fn new(json: &'a str) -> Self {
        Self {
            json,
            bytes: json.as_bytes(),
            at: 0,
            spaced: false,
        }
    }

    /// Starts a new count for [`Cursor::spaced`].
    pub(super) fn forget_spacing(&mut self) {
        self.spaced = false;
    }

    /// True when whitespace was skipped since [`Cursor::forget_spacing`]
    /// (or since the start): the text read is then not compact.
    pub(super) fn spaced(&self) -> bool {
        self.spaced
    }

    /// The byte offset of the cursor.
    pub(super) fn position(&self) -> usize {
        self.at
    }

    /// The text of `range` (byte offsets this cursor reported).
    pub(super) fn text(&self, range: std::ops::Range<usize>) -> Option<&'a str> {
        self.json.get(range)
    }

    /// The byte offset of the next token (whitespace skipped), if any.
    pub(super) fn position_of_next(&mut self) -> Option<usize> {
        self.skip_ws();
        (self.at < self.bytes.len()).then_some(self.at)
    }

    /// True when only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.at == self.bytes.len()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        // Compact JSON has no whitespace: one look, and the loop is left
        // to spaced text.
        if self.bytes.get(self.at).is_some_and(|&b| b > b' ') {
            return;
        }
        self.skip_ws_from_here();
    }

    #[cold]
    fn skip_ws_from_here(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.at) {
            self.at += 1;
            self.spaced = true;
        }
    }

    /// The next byte after whitespace, not consumed.
    #[inline(always)]
    pub(super) fn peek(&mut self) -> Option<u8> {
        match self.bytes.get(self.at) {
            Some(&byte) if byte > b' ' => Some(byte),
            _ => {
                self.skip_ws_from_here();
                self.bytes.get(self.at).copied()
            }
        }
    }

    /// Consumes `byte` (after whitespace), or fails.
    #[inline(always)]
    pub(super) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Consumes `byte` if it comes next; says whether it did.
    pub(super) fn eat_if(&mut self, byte: u8) -> bool {
        self.eat(byte).is_some()
    }

    /// After a value inside an object or array: true at the closing
    /// `close`, false after a comma (more follows), `None` otherwise.
    pub(super) fn next_or_close(&mut self, close: u8) -> Option<bool> {
        if self.eat_if(close) {
            Some(true)
        } else {
            self.eat(b',').map(|()| false)
        }
    }

    /// A key of one to four capital letters written as `"KEY":` (a type
    /// tag), consumed with its colon; `None`, consuming nothing, for any
    /// other key, which [`Cursor::string`] then reads.
    #[inline(always)]
    pub(super) fn tag_key(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let rest = self.bytes.get(self.at..)?;
        // The first quote after the opening one closes the key; the letters
        // before it are checked below, so a later quote cannot match here.
        let close = match rest {
            [b'"', _, b'"', b':', ..] => 2,
            [b'"', _, _, b'"', b':', ..] => 3,
            [b'"', _, _, _, b'"', b':', ..] => 4,
            [b'"', _, _, _, _, b'"', b':', ..] => 5,
            _ => return None,
        };
        if !rest[1..close].iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        let key = self.json.get(self.at + 1..self.at + close)?;
        self.at += close + 2;
        Some(key)
    }

    /// Consumes `word` (`true`, `false`, `null`).
    pub(super) fn literal(&mut self, word: &str) -> Option<()> {
        self.skip_ws();
        self.bytes
            .get(self.at..)?
            .starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    /// A string token, checked as serde_json checks it: no raw control
    /// characters, only valid escapes, `\u` surrogates in pairs.
    #[inline(always)]
    pub(super) fn string(&mut self) -> Option<Token<'a>> {
        self.eat(b'"')?;
        let start = self.at;
        // Most strings (names, tags, short values) end, unescaped, within
        // the next sixteen bytes: read here, inline in the caller.
        match first_block(self.bytes, start) {
            FirstBlock::Ends(stop) => return self.token(start, stop, false),
            // The rest is scanned from the block's end, not again from its start.
            FirstBlock::Plain => self.at = start + FIRST_BLOCK,
            FirstBlock::Other => {}
        }
        self.string_from(start)
    }

    /// The rest of [`Cursor::string`], from its first byte at `start`.
    #[cold]
    #[inline(never)]
    fn string_from(&mut self, start: usize) -> Option<Token<'a>> {
        let mut escaped = false;
        loop {
            let stop = self.at + find_special(self.bytes.get(self.at..)?)?;
            self.at = stop;
            match self.bytes[stop] {
                b'"' => return self.token(start, stop, escaped),
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                _ => return None, // a raw control character
            }
        }
    }

    /// The string token from `start` to its closing quote at `stop`, the
    /// cursor moved past the quote. `start - 1` and `stop` must be the
    /// indexes of the string's opening and closing quotes.
    #[inline]
    fn token(&mut self, start: usize, stop: usize, escaped: bool) -> Option<Token<'a>> {
        self.at = stop + 1;
        if start == 0 || stop >= self.json.len() || start > stop {
            return None;
        }
        // SAFETY: `start - 1` and `stop` index ASCII quotes of `json` (the
        // callers found them there; the range was checked just above), and
        // a byte next to an ASCII byte starts a character, so all four
        // ends are character boundaries of `json`: the slices are valid
        // UTF-8 inside its bounds.
        let (quoted, raw) = unsafe {
            (
                self.json.get_unchecked(start - 1..stop + 1),
                self.json.get_unchecked(start..stop),
            )
        };
        Some(Token {
            raw,
            quoted,
            escaped,
        })
    }

    /// Checks one escape sequence at the cursor (on its backslash).
    fn escape(&mut self) -> Option<()> {
        let kind = *self.bytes.get(self.at + 1)?;
        self.at += 2;
        match kind {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Some(()),
            b'u' => {
                let unit = self.hex4()?;
                match unit {
                    0xD800..=0xDBFF => {
                        // A leading surrogate needs a trailing one right after.
                        if self.bytes.get(self.at..self.at + 2)? != b"\\u" {
                            return None;
                        }
                        self.at += 2;
                        matches!(self.hex4()?, 0xDC00..=0xDFFF).then_some(())
                    }
                    0xDC00..=0xDFFF => None,
                    _ => Some(()),
                }
            }
            _ => None,
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = std::str::from_utf8(self.bytes.get(self.at..self.at + 4)?).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u16::from_str_radix(digits, 16).ok()
    }

    /// A JSON number's text (`-12.5e3`).
    pub(super) fn number(&mut self) -> Option<&'a str> {
        self.skip_ws();
        let start = self.at;
        let digits = |cursor: &mut Self| {
            let from = cursor.at;
            while cursor.bytes.get(cursor.at).is_some_and(u8::is_ascii_digit) {
                cursor.at += 1;
            }
            cursor.at - from
        };
        if self.bytes.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        match self.bytes.get(self.at)? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.bytes.get(self.at) == Some(&b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.at) {
            self.at += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.at) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        self.json.get(start..self.at)
    }

    /// Skips any JSON value (checked), `depth` levels deep already.
    pub(super) fn skip_value(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                if self.eat_if(b'}') {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.eat(b':')?;
                    self.skip_value(depth + 1)?;
                    if self.next_or_close(b'}')? {
                        return Some(());
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at += 1;
                if self.eat_if(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.next_or_close(b']')? {
                        return Some(());
                    }
                }
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }
}

/// Bytes that end a plain run inside a string: quote, backslash, control.
fn special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// The index of the first [`special`] byte: sixteen bytes at a time with
/// SSE2 (part of every x86_64 processor), the rest eight at a time.
#[cfg(target_arch = "x86_64")]
fn find_special(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(block) = bytes.get(at..at + 16) {
        let mask = special_mask(block);
        if mask != 0 {
            return Some(at + mask.trailing_zeros() as usize);
        }
        at += 16;
    }
    find_special_words(bytes.get(at..)?).map(|found| at + found)
}

/// One bit per byte of `block` (at most its first 16), set for the
/// [`special`] ones.
#[cfg(target_arch = "x86_64")]
#[inline]
fn special_mask(block: &[u8]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    assert!(block.len() >= 16);
    // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions
    // exist on every processor this code is built for; the load reads 16
    // bytes, which `block` holds (asserted above), and needs no alignment.
    let mask = unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let controls = _mm_set1_epi8(0x1f);
        // A byte is below 0x20 when max(byte, 0x1f) is 0x1f (unsigned).
        let flagged = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8)),
            ),
            _mm_cmpeq_epi8(_mm_max_epu8(v, controls), controls),
        );
        _mm_movemask_epi8(flagged)
    };
    mask as u32
}

/// The bytes of a string that [`first_block`] looks at in one step.
const FIRST_BLOCK: usize = 16;

/// What the first [`FIRST_BLOCK`] bytes of a string say.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum FirstBlock {
    /// The closing quote, at this index, is the first [`special`] byte.
    Ends(usize),
    /// None of them is [`special`]: the string goes on past them.
    Plain,
    /// An escape or control character comes first, or the text ends
    /// within them (or the processor has no SSE2): scan byte-wise.
    Other,
}

/// Looks at the [`FIRST_BLOCK`] bytes from `start` at once.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_block(bytes: &[u8], start: usize) -> FirstBlock {
    let Some(block) = bytes.get(start..start + FIRST_BLOCK) else {
        return FirstBlock::Other;
    };
    let mask = special_mask(block);
    if mask == 0 {
        return FirstBlock::Plain;
    }
    let stop = start + mask.trailing_zeros() as usize;
    if bytes.get(stop) == Some(&b'"') {
        FirstBlock::Ends(stop)
    } else {
        FirstBlock::Other
    }
}

/// Processors without SSE2: no separate first step.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn first_block(_bytes: &[u8], _start: usize) -> FirstBlock {
    FirstBlock::Other
}

/// The index of the first [`special`] byte (processors without SSE2).
#[cfg(not(target_arch = "x86_64"))]
fn find_special(bytes: &[u8]) -> Option<usize> {
    find_special_words(bytes)
}

/// The index of the first [`special`] byte, eight bytes at a time: in a
/// word, a byte is flagged when it equals `"` or `\` or is below 0x20 (the
/// lowest flagged byte is always a true one; borrows only disturb bytes
/// above it).
fn find_special_words(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const BACKSLASHES: u64 = ONES * b'\\' as u64;
    const SPACES: u64 = ONES * 0x20;
    let words = bytes.chunks_exact(8);
    let tail = words.remainder();
    for (index, chunk) in words.enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let (q, b) = (w ^ QUOTES, w ^ BACKSLASHES);
        let flagged = ((q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (w.wrapping_sub(SPACES) & !w))
            & HIGH;
        if flagged != 0 {
            return Some(index * 8 + (flagged.trailing_zeros() / 8) as usize);
        }
    }
    let done = bytes.len() - tail.len();
    tail.iter().position(|&b| special(b)).map(|at| done + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(json: &str) -> bool {
        let mut cursor = Cursor::new(json);
        cursor.skip_value(0).is_some() && cursor.at_end()
    }

    #[test]
    fn accepts_and_refuses_what_serde_json_does() {
        for json in [
            r#"{"a":[1,-2.5e+3,0,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"]}"#,
            " [ ] ",
            "{}",
            "\"\"",
            "-0.0E-1",
            r#"{"k":{"k":[{"k":"v"}]}}"#,
            "1 ",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "[1,]",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"a\u{1}b\"",
            "tru",
            "nul",
            "[1] [2]",
            "\"unterminated",
        ] {
            let ours = skips(json);
            let theirs = serde_json::from_str::<serde::de::IgnoredAny>(json).is_ok()
                && serde_json::from_str::<serde_json::Value>(json).is_ok();
            assert_eq!(ours, theirs, "{json:?}");
        }
    }

    #[test]
    fn special_bytes_are_found_in_every_lane() {
        for len in 1..40 {
            for at in 0..len {
                for special_byte in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    bytes[at] = special_byte;
                    // Bytes above 0x7f and exactly 0x20 never count.
                    if at + 1 < len {
                        bytes[at + 1] = 0xC3;
                    }
                    if at > 0 {
                        bytes[at - 1] = 0x20;
                    }
                    assert_eq!(find_special(&bytes), Some(at), "{bytes:?}");
                    assert_eq!(find_special_words(&bytes), Some(at), "{bytes:?}");
                }
            }
            let plain: Vec<u8> = (0..len).map(|i| 0x20 + (i % 2) as u8 * 0xA0).collect();
            assert_eq!(find_special(&plain), None);
            assert_eq!(find_special_words(&plain), None);
        }
    }

    #[test]
    fn every_byte_value_is_classified_as_serde_json_does() {
        for byte in 0..=u8::MAX {
            for len in [1, 8, 15, 16, 17, 33] {
                let mut bytes = vec![b'a'; len];
                bytes[len - 1] = byte;
                let expected = special(byte).then_some(len - 1);
                assert_eq!(find_special(&bytes), expected, "{byte:#x} at {}", len - 1);
            }
        }
    }

    #[test]
    fn skipped_whitespace_is_noticed() {
        let mut cursor = Cursor::new(r#"{"a":1}"#);
        assert!(cursor.skip_value(0).is_some() && !cursor.spaced());
        let mut cursor = Cursor::new(r#"{"a": 1}"#);
        assert!(cursor.skip_value(0).is_some() && cursor.spaced());
        cursor.forget_spacing();
        assert!(!cursor.spaced());
    }

    #[test]
    fn tag_keys_are_read_whole_or_not_at_all() {
        let mut cursor = Cursor::new(r#" "BOOL":true"#);
        assert_eq!(cursor.tag_key(), Some("BOOL"));
        assert!(cursor.literal("true").is_some());
        for other in [
            r#""BOOLS":1"#,
            r#""S" :1"#,
            r#""s":1"#,
            r#""":1"#,
            r#""S\"":1"#,
            r#""S"S":1"#,
            r#""AB"":1"#,
            r#""ABCD""#,
        ] {
            let mut cursor = Cursor::new(other);
            assert_eq!(cursor.tag_key(), None, "{other}");
            assert!(cursor.string().is_some(), "{other}: nothing consumed");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(!skips(&deep));
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(skips(&fine));
    }

    #[test]
    fn strings_of_every_length_end_at_their_quote() {
        for len in 0..40 {
            for tail in ["", ",", "\\u0041\"", "\\n\""] {
                let content = "é".repeat(len / 2) + &"a".repeat(len % 2);
                let json = format!("\"{content}\"{tail}");
                let mut cursor = Cursor::new(&json);
                let token = cursor.string().expect("a string");
                assert_eq!(token.plain(), Some(content.as_str()), "{json}");
                assert_eq!(token.quoted, format!("\"{content}\""));
                assert_eq!(cursor.position(), content.len() + 2);
                let escaped = format!("\"{content}\\t{content}\"");
                let token = Cursor::new(&escaped).string().expect("a string");
                assert!(token.escaped && token.quoted == escaped, "{escaped}");
            }
        }
    }

    #[test]
    fn tokens_say_whether_they_hold_escapes() {
        let mut cursor = Cursor::new(r#" "plain" "with\"quote" "#);
        let plain = cursor.string().unwrap();
        assert_eq!(plain.plain(), Some("plain"));
        let escaped = cursor.string().unwrap();
        assert!(escaped.escaped && escaped.plain().is_none());
        assert_eq!(escaped.raw, r#"with\"quote"#);
    }
}
