//! The on-disk index for dimension tables larger than memory: an LMDB
//! environment (through `heed`), memory-mapped read-only, so lookups read
//! the operating system's page cache and the process holds no copy.
//!
//! A build sorts the rows on disk first (`extsort`, in segments of a
//! bounded size) and appends them in key order, so every page is written
//! once and memory stays bounded whatever the table's size; equal keys
//! meet in the sorted order, which is where duplicates are refused.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, PutFlags, RoTxn, WithoutTls};

use super::codec::key_display;
use super::read::{EncodedRow, Place, ReadCounts};
use super::DimensionError;

/// Rows sorted in memory before a segment is written to disk.
const SORT_SEGMENT_ROWS: usize = 200_000;
/// Rows appended per write transaction (bounds the dirty pages held).
const ROWS_PER_COMMIT: u64 = 100_000;
/// The data file's name inside an index directory.
pub const DATA_FILE: &str = "data.mdb";

/// A row waiting to be sorted: its key, where it came from, its cells.
struct SortRow {
    key: Vec<u8>,
    place: u64,
    cells: Vec<u8>,
}

fn place_code(place: Place) -> u64 {
    match place {
        Place::Line(n) => n << 1,
        Place::Row(n) => (n << 1) | 1,
    }
}

fn place_of(code: u64) -> Place {
    if code & 1 == 1 {
        Place::Row(code >> 1)
    } else {
        Place::Line(code >> 1)
    }
}

fn write_bytes(out: &mut dyn Write, bytes: &[u8]) -> std::io::Result<()> {
    let length = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "row over 4 GiB"))?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(bytes)
}

fn read_bytes(input: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(length) as usize];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

impl extsort::Sortable for SortRow {
    fn encode<W: Write>(&self, writer: &mut W) -> std::io::Result<()> {
        write_bytes(writer, &self.key)?;
        writer.write_all(&self.place.to_le_bytes())?;
        write_bytes(writer, &self.cells)
    }

    fn decode<R: Read>(reader: &mut R) -> std::io::Result<Self> {
        let key = read_bytes(reader)?;
        let mut place = [0u8; 8];
        reader.read_exact(&mut place)?;
        let cells = read_bytes(reader)?;
        Ok(Self {
            key,
            place: u64::from_le_bytes(place),
            cells,
        })
    }
}

/// A built, read-only index, open for lookups.
pub struct DiskIndex {
    env: Env<WithoutTls>,
    rows: Database<Bytes, Bytes>,
    dir: PathBuf,
}

impl std::fmt::Debug for DiskIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskIndex")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Feeds every row of the source to the callback it is given.
pub type Feed<'a> = dyn FnOnce(
        &mut dyn FnMut(&EncodedRow) -> Result<(), DimensionError>,
    ) -> Result<ReadCounts, DimensionError>
    + 'a;

/// Builds an index in `dir` (an empty directory of its own) from the rows
/// `feed` gives; `name` names the source in errors, `key_parts` is the
/// number of key parts. Nothing in `dir` is usable unless this returns Ok.
pub fn build(
    dir: &Path,
    name: &str,
    key_parts: usize,
    feed: Box<Feed<'_>>,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadCounts, DimensionError> {
    let sort_dir = dir.join("sort");
    std::fs::create_dir_all(&sort_dir).map_err(|e| DimensionError::io(sort_dir.display(), e))?;
    let sort_error = |e: std::io::Error| DimensionError::store(&sort_dir, format!("sorting: {e}"));
    let mut sorter = extsort::ExternalSorter::new()
        .with_segment_size(SORT_SEGMENT_ROWS)
        .with_sort_dir(sort_dir.clone())
        .pushed_by(|a: &SortRow, b: &SortRow| a.key.cmp(&b.key).then(a.place.cmp(&b.place)));
    let mut bytes = 0u64;
    let counts = feed(&mut |row: &EncodedRow| {
        bytes += (row.key.bytes().len() + row.cells.len() + 16) as u64;
        sorter
            .push(SortRow {
                key: row.key.bytes().to_vec(),
                place: place_code(row.place),
                cells: row.cells.clone(),
            })
            .map_err(sort_error)
    })?;
    let sorted = sorter.done().map_err(sort_error)?;
    let env = open_env(dir, map_size_for(bytes), false)?;
    let store = |e: heed::Error| DimensionError::store(dir, e);
    let mut txn = env.write_txn().map_err(store)?;
    let rows: Database<Bytes, Bytes> = env.create_database(&mut txn, None).map_err(store)?;
    let mut previous: Option<SortRow> = None;
    let mut written = 0u64;
    for row in sorted {
        let row = row.map_err(sort_error)?;
        if let Some(before) = &previous {
            if before.key == row.key {
                return Err(DimensionError::DuplicateKey {
                    path: name.to_owned(),
                    place: format!("{} and {}", place_of(before.place), place_of(row.place)),
                    key: key_display(&row.key, key_parts),
                });
            }
        }
        if let Err(err) = rows.put_with_flags(&mut txn, PutFlags::APPEND, &row.key, &row.cells) {
            return Err(row_refused(name, &row, key_parts, err, dir));
        }
        written += 1;
        if written % ROWS_PER_COMMIT == 0 {
            txn.commit().map_err(store)?;
            txn = env.write_txn().map_err(store)?;
            progress(written);
        }
        previous = Some(row);
    }
    txn.commit().map_err(store)?;
    env.force_sync().map_err(store)?;
    drop(env);
    std::fs::remove_dir_all(&sort_dir).map_err(|e| DimensionError::io(sort_dir.display(), e))?;
    progress(written);
    Ok(counts)
}

/// The error for a row LMDB refused (keys over 511 bytes are the usual cause).
fn row_refused(
    name: &str,
    row: &SortRow,
    key_parts: usize,
    err: heed::Error,
    dir: &Path,
) -> DimensionError {
    match err {
        heed::Error::Mdb(heed::MdbError::BadValSize) => DimensionError::Row {
            path: name.to_owned(),
            place: place_of(row.place).to_string(),
            problem: format!(
                "key {:?} is {} bytes; a disk-mode index takes keys of at most 511",
                key_display(&row.key, key_parts),
                row.key.len()
            ),
        },
        other => DimensionError::store(dir, other),
    }
}

/// A map comfortably larger than the rows (B-tree pages are not full).
fn map_size_for(row_bytes: u64) -> usize {
    let wanted = row_bytes.saturating_mul(2).saturating_add(64 << 20);
    let rounded = wanted.div_ceil(1 << 20) << 20;
    usize::try_from(rounded).unwrap_or(usize::MAX)
}

fn open_env(
    dir: &Path,
    map_size: usize,
    read_only: bool,
) -> Result<Env<WithoutTls>, DimensionError> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(1);
    let flags = if read_only {
        // The index never changes once built: no lock file, no writer to
        // fence; no read-ahead, since lookups are random.
        EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_READ_AHEAD
    } else {
        EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC
    };
    // SAFETY: the directory is this index's own; once built it is only
    // ever opened read-only, and no process writes it again.
    let opened = unsafe {
        options.flags(flags);
        options.open(dir)
    };
    opened.map_err(|e| DimensionError::store(dir, e))
}

impl DiskIndex {
    /// Opens the index built in `dir`.
    pub fn open(dir: &Path) -> Result<Self, DimensionError> {
        let data = dir.join(DATA_FILE);
        let size = std::fs::metadata(&data)
            .map_err(|e| DimensionError::io(data.display(), e))?
            .len();
        let env = open_env(dir, map_size_for(size), true)?;
        let store = |e: heed::Error| DimensionError::store(dir, e);
        let txn = env.read_txn().map_err(store)?;
        let rows = env
            .open_database(&txn, None)
            .map_err(store)?
            .ok_or_else(|| DimensionError::store(dir, "the index holds no table"))?;
        drop(txn);
        Ok(Self {
            env,
            rows,
            dir: dir.to_path_buf(),
        })
    }

    /// The directory the index lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Rows held.
    pub fn len(&self) -> Result<u64, DimensionError> {
        let txn = self
            .env
            .read_txn()
            .map_err(|e| DimensionError::store(&self.dir, e))?;
        self.rows
            .len(&txn)
            .map_err(|e| DimensionError::store(&self.dir, e))
    }

    /// A read transaction for lookups (cheap; hold it for a chunk, not longer).
    pub fn reader(&self) -> Result<DiskReader<'_>, DimensionError> {
        let txn = self
            .env
            .read_txn()
            .map_err(|e| DimensionError::store(&self.dir, e))?;
        Ok(DiskReader { txn, index: self })
    }
}

/// Lookups in one read transaction.
pub struct DiskReader<'a> {
    txn: RoTxn<'a, WithoutTls>,
    index: &'a DiskIndex,
}

impl DiskReader<'_> {
    /// The encoded cells of the row keyed `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, DimensionError> {
        self.index
            .rows
            .get(&self.txn, key)
            .map_err(|e| DimensionError::store(&self.index.dir, e))
    }
}
