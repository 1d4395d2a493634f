//! Finding where a JSON string's plain run ends (a quote, a backslash or a
//! control character): sixteen bytes at a time with SSE2 on x86_64, eight
//! at a time (SWAR) elsewhere.

/// Bytes that end a plain run inside a string: quote, backslash, control.
pub(super) fn special(byte: u8) -> bool {
    byte == b'"' || byte == b'\\' || byte < 0x20
}

/// The index of the first [`special`] byte: sixteen bytes at a time with
/// SSE2 (part of every x86_64 processor), the rest eight at a time.
#[cfg(target_arch = "x86_64")]
pub(super) fn find_special(bytes: &[u8]) -> Option<usize> {
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
pub(super) const FIRST_BLOCK: usize = 16;

/// What the first [`FIRST_BLOCK`] bytes of a string say.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) enum FirstBlock {
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
pub(super) fn first_block(bytes: &[u8], start: usize) -> FirstBlock {
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
pub(super) fn first_block(_bytes: &[u8], _start: usize) -> FirstBlock {
    FirstBlock::Other
}

/// The index of the first [`special`] byte (processors without SSE2).
#[cfg(not(target_arch = "x86_64"))]
pub(super) fn find_special(bytes: &[u8]) -> Option<usize> {
    find_special_words(bytes)
}

/// The index of the first [`special`] byte, eight bytes at a time: in a
/// word, a byte is flagged when it equals `"` or `\` or is below 0x20 (the
/// lowest flagged byte is always a true one; borrows only disturb bytes
/// above it).
pub(super) fn find_special_words(bytes: &[u8]) -> Option<usize> {
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
}
