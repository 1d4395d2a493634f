//! A strict, allocation-free reader of JSON tokens for the fast paths (see
//! [`super::scan`] and the record walk in `crate::decode`). It checks everything serde_json checks
//! (string escapes and surrogate pairs, control characters, number grammar,
//! nesting depth) and answers `None` where serde_json would fail; the
//! callers then run the serde-based decoder, which names the error.

use super::string_scan::{find_special, first_block, FirstBlock, FIRST_BLOCK};

/// Nesting serde_json allows before it refuses the input.
const MAX_DEPTH: usize = 128;

/// A position in JSON text.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    json: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Whether whitespace was skipped since [`Cursor::forget_spacing`].
    spaced: bool,
}

/// A string token: the text between its quotes, as written.
pub(crate) struct Token<'a> {
    /// The raw text (escapes not resolved).
    pub(crate) raw: &'a str,
    /// The raw text with its quotes: the token as written.
    pub(crate) quoted: &'a str,
    /// True when the text holds escapes (`raw` is then not the content).
    pub(crate) escaped: bool,
}

impl<'a> Token<'a> {
    /// The content, when it is the raw text (no escapes).
    pub(crate) fn plain(&self) -> Option<&'a str> {
        (!self.escaped).then_some(self.raw)
    }
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `json`.
    pub(crate) fn new(json: &'a str) -> Self {
        Self {
            json,
            bytes: json.as_bytes(),
            at: 0,
            spaced: false,
        }
    }

    /// Starts a new count for [`Cursor::spaced`].
    pub(crate) fn forget_spacing(&mut self) {
        self.spaced = false;
    }

    /// True when whitespace was skipped since [`Cursor::forget_spacing`]
    /// (or since the start): the text read is then not compact.
    pub(crate) fn spaced(&self) -> bool {
        self.spaced
    }

    /// The byte offset of the cursor.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    /// The text of `range` (byte offsets this cursor reported).
    pub(crate) fn text(&self, range: std::ops::Range<usize>) -> Option<&'a str> {
        self.json.get(range)
    }

    /// The byte offset of the next token (whitespace skipped), if any.
    pub(crate) fn position_of_next(&mut self) -> Option<usize> {
        self.skip_ws();
        (self.at < self.bytes.len()).then_some(self.at)
    }

    /// True when only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
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
    pub(crate) fn peek(&mut self) -> Option<u8> {
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
    pub(crate) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// Consumes `byte` if it comes next; says whether it did.
    pub(crate) fn eat_if(&mut self, byte: u8) -> bool {
        self.eat(byte).is_some()
    }

    /// After a value inside an object or array: true at the closing
    /// `close`, false after a comma (more follows), `None` otherwise.
    pub(crate) fn next_or_close(&mut self, close: u8) -> Option<bool> {
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
    pub(crate) fn tag_key(&mut self) -> Option<&'a str> {
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
    pub(crate) fn literal(&mut self, word: &str) -> Option<()> {
        self.skip_ws();
        self.bytes
            .get(self.at..)?
            .starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    /// A string token, checked as serde_json checks it: no raw control
    /// characters, only valid escapes, `\u` surrogates in pairs.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Option<Token<'a>> {
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
    pub(crate) fn number(&mut self) -> Option<&'a str> {
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
    pub(crate) fn skip_value(&mut self, depth: usize) -> Option<()> {
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
