//! File naming and crash repair for the `jsonl` sink.
//!
//! Every batch is appended as one write (one gzip member when gzipped) and
//! synced before it is acknowledged, so a crash can only leave an
//! unacknowledged, partly written batch at the end of the newest file. On
//! start that torn tail is cut off; the batch is read again from the stream.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::time::SystemTime;

/// The name of a new file: table, UTC start time and a counter, so that
/// names sort in write order (`orders-20261122T015136.123Z-0001.jsonl.gz`).
pub fn file_name(table: &str, started: SystemTime, counter: u32, gzip: bool) -> String {
    let stamp: String = humantime::format_rfc3339_millis(started)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let ext = if gzip { "jsonl.gz" } else { "jsonl" };
    format!("{table}-{stamp}-{counter:04}.{ext}")
}

/// Cuts a torn tail off `path`: after the last newline for plain files,
/// after the last complete gzip member for `.gz` files. Returns the number
/// of bytes removed.
pub fn repair_tail(path: &Path) -> io::Result<u64> {
    let data = std::fs::read(path)?;
    let gzip = path.extension().is_some_and(|ext| ext == "gz");
    let keep = if gzip {
        complete_gzip_prefix(&data)
    } else {
        data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    };
    let removed = (data.len() - keep) as u64;
    if removed > 0 {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(keep as u64)?;
        file.sync_all()?;
    }
    Ok(removed)
}

/// Length of the longest prefix made of complete gzip members.
fn complete_gzip_prefix(data: &[u8]) -> usize {
    let mut rest: &[u8] = data;
    let mut kept = 0;
    while !rest.is_empty() {
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        if io::copy(&mut decoder, &mut io::sink()).is_err() {
            break;
        }
        // The decoder stops at the end of one member; what is left follows it.
        let remaining: &[u8] = decoder.into_inner();
        let consumed = rest.len() - remaining.len();
        if consumed == 0 {
            break;
        }
        kept += consumed;
        rest = &rest[consumed..];
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::{Read, Write};

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn names_sort_in_write_order() {
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        let a = file_name("orders", t0, 1, true);
        assert_eq!(a, "orders-20231114T221320.123Z-0001.jsonl.gz");
        assert!(a < file_name("orders", t0, 2, true));
    }

    #[test]
    fn plain_tail_is_cut_after_the_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        assert_eq!(repair_tail(&path).unwrap(), 5);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n");
        assert_eq!(repair_tail(&path).unwrap(), 0);
    }

    #[test]
    fn gzip_tail_is_cut_after_the_last_member() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl.gz");
        let mut data = gzip("one\n");
        data.extend(gzip("two\n"));
        let good = data.len();
        let torn = gzip("three\n");
        data.extend(&torn[..torn.len() / 2]);
        std::fs::write(&path, &data).unwrap();
        assert_eq!(repair_tail(&path).unwrap(), (data.len() - good) as u64);
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(&path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");
    }
}
