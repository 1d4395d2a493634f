//! Dimension index benchmark (driven by `bench/dimension.sh`).
//!
//! - `generate --rows N --out FILE.parquet` writes a customer dimension
//!   (`id`, `name`, `segment`, `score`, `signup_day`) streaming, in row
//!   groups of about a million rows, with the ids in a shuffled order so an
//!   index build never gets sorted input for free.
//! - `build --file F --mode memory|disk|auto --index-dir D [--budget-mb M]`
//!   builds the index keyed by `id` with the four other columns kept and
//!   prints rows, mode, wall and CPU seconds and the process's memory.
//! - `lookup --file F --index-dir D --lookups M [--mode …] [--cold]
//!   [--prewarm]` reopens the disk index built for F (or builds it, always
//!   for `memory`) and times random lookups of existing keys (one in a
//!   thousand a miss) on one thread, checking every row: with `--cold` a
//!   first pass after the index's files were dropped from the page cache,
//!   then the warm pass(es).
//!
//! Results are printed as `RESULT kind key=value …` lines.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use clap::{Parser, Subcommand, ValueEnum};
use dynamo_cdc::dimension::{
    build, reuse, BuildRequest, Cell, DimensionFormat, DimensionMode, KeyBuilder, LoadedIndex,
    RowSpec, SourceId,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: u64 = 65_536;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 1 << 20;
/// Lookups per index reader (a join holds one per chunk).
const LOOKUPS_PER_READER: u64 = 1_000;
/// One lookup in this many is of a key no row has.
const MISS_EVERY: u64 = 1_000;

/// The engine's allocator, so memory figures match what it would hold
/// (`bench/dimension.sh` sets the engine's purge options through
/// mimalloc's environment variables).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a synthetic customer dimension as Parquet.
    Generate {
        /// Rows to write.
        #[arg(long)]
        rows: u64,
        /// The Parquet file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Builds the index of a dimension file and reports its cost.
    Build {
        /// The Parquet file.
        #[arg(long)]
        file: PathBuf,
        /// Where the index goes.
        #[arg(long, value_enum)]
        mode: Mode,
        /// Directory of disk indexes.
        #[arg(long)]
        index_dir: PathBuf,
        /// The memory budget of `auto`, in MiB.
        #[arg(long, default_value_t = 256)]
        budget_mb: u64,
    },
    /// Times random lookups against the index of a dimension file.
    Lookup {
        /// The Parquet file the index was built from.
        #[arg(long)]
        file: PathBuf,
        /// Directory of disk indexes.
        #[arg(long)]
        index_dir: PathBuf,
        /// Lookups per warm pass.
        #[arg(long)]
        lookups: u64,
        /// `disk` and `auto` reuse a built disk index (building one when
        /// none matches); `memory` builds in memory.
        #[arg(long, value_enum, default_value_t = Mode::Disk)]
        mode: Mode,
        /// The memory budget of `auto`, in MiB.
        #[arg(long, default_value_t = 256)]
        budget_mb: u64,
        /// Drop the index's files from the page cache and run a cold pass first.
        #[arg(long)]
        cold: bool,
        /// Lookups in the cold pass (default: `--lookups`).
        #[arg(long)]
        cold_lookups: Option<u64>,
        /// Read the index's files once before the warm passes, so that
        /// they are all in the page cache.
        #[arg(long)]
        prewarm: bool,
        /// Warm passes.
        #[arg(long, default_value_t = 1)]
        warm_passes: u32,
        /// Seed of the random keys.
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Memory,
    Disk,
    Auto,
}

impl Mode {
    fn dimension_mode(self) -> DimensionMode {
        match self {
            Self::Memory => DimensionMode::Memory,
            Self::Disk => DimensionMode::Disk,
            Self::Auto => DimensionMode::Auto,
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Generate { rows, out } => generate(rows, &out),
        Command::Build {
            file,
            mode,
            index_dir,
            budget_mb,
        } => {
            let cpu = cpu_seconds()?;
            let started = Instant::now();
            let index = build_index(&file, mode, &index_dir, budget_mb)?;
            let wall = started.elapsed().as_secs_f64();
            let cpu = cpu_seconds()? - cpu;
            let (bytes, allocated) = dir_bytes(&index_dir)?;
            println!(
                "RESULT build rows={} mode={} wall_s={wall:.2} cpu_s={cpu:.2} index_mb={:.1} index_allocated_mb={:.1} {}",
                index.rows(),
                index.mode(),
                mib(bytes),
                mib(allocated),
                memory()?
            );
            Ok(())
        }
        Command::Lookup {
            file,
            index_dir,
            lookups,
            mode,
            budget_mb,
            cold,
            cold_lookups,
            prewarm,
            warm_passes,
            seed,
        } => {
            let started = Instant::now();
            let index = match mode {
                Mode::Memory => None,
                Mode::Disk | Mode::Auto => reuse(&index_dir, &source(&file)?, &spec()),
            };
            let (index, how) = match index {
                Some(index) => (index, "reused"),
                None => (build_index(&file, mode, &index_dir, budget_mb)?, "built"),
            };
            println!(
                "RESULT open rows={} mode={} how={how} wall_s={:.2} {}",
                index.rows(),
                index.mode(),
                started.elapsed().as_secs_f64(),
                memory()?
            );
            let mut rng = fastrand::Rng::with_seed(seed);
            if cold {
                evict(&index_dir)?;
                run_pass(&index, "cold", cold_lookups.unwrap_or(lookups), &mut rng)?;
            }
            if prewarm {
                let started = Instant::now();
                let (bytes, _) = dir_bytes(&index_dir)?;
                read_files(&index_dir)?;
                println!(
                    "RESULT prewarm read_mb={:.1} wall_s={:.2}",
                    mib(bytes),
                    started.elapsed().as_secs_f64()
                );
            }
            for pass in 1..=warm_passes {
                run_pass(&index, &format!("warm{pass}"), lookups, &mut rng)?;
            }
            Ok(())
        }
    }
}

/// The key and kept columns every run uses.
fn spec() -> RowSpec {
    RowSpec {
        key: vec!["id".into()],
        columns: ["name", "segment", "score", "signup_day"]
            .map(String::from)
            .to_vec(),
    }
}

fn source(file: &Path) -> anyhow::Result<SourceId> {
    let path = file.to_str().context("the file's path is not UTF-8")?;
    Ok(SourceId::local(path)?)
}

fn build_index(
    file: &Path,
    mode: Mode,
    index_dir: &Path,
    budget_mb: u64,
) -> anyhow::Result<LoadedIndex> {
    let source = source(file)?;
    let spec = spec();
    let request = BuildRequest {
        name: "customers",
        source: &source,
        file,
        format: DimensionFormat::Parquet,
        spec: &spec,
        mode: mode.dimension_mode(),
        memory_budget: usize::try_from(budget_mb << 20)?,
        index_dir,
    };
    Ok(build(&request)?)
}

// ---- generate ----------------------------------------------------------

const SEGMENTS: [&str; 5] = ["retail", "smb", "mid_market", "enterprise", "public"];
const FIRST: [&str; 24] = [
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Keiko", "Luca", "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tariq", "Ursula",
    "Viktor", "Wen", "Yara",
];
/// Surname syllables: three of them make 32,768 surnames, so names are
/// too varied for a Parquet dictionary, as real names are.
const SYLLABLES: [&str; 32] = [
    "ba", "ber", "ca", "dor", "el", "fen", "gar", "han", "is", "jo", "kel", "lin", "mar", "nov",
    "o", "per", "qui", "ros", "sa", "tan", "u", "ver", "wal", "xi", "ya", "zen", "bro", "dia",
    "fal", "gus", "lo", "mi",
];
/// A well-mixed 64-bit hash of `n` (splitmix64's finalizer).
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A bijection of `0..rows` (an affine map with a multiplier coprime to
/// `rows`): row `i` gets customer number `(i * a + b) % rows`.
struct Shuffle {
    rows: u64,
    a: u64,
    b: u64,
}

impl Shuffle {
    fn new(rows: u64) -> Self {
        let mut a = (rows as f64 * 0.618_033_988_7) as u64 | 1;
        while gcd(a, rows) != 1 {
            a += 2;
        }
        Self {
            rows,
            a,
            b: rows / 3,
        }
    }

    fn number(&self, row: u64) -> u64 {
        ((u128::from(row) * u128::from(self.a) + u128::from(self.b)) % u128::from(self.rows)) as u64
    }
}

/// Digits of the largest customer number (every id is padded to it).
fn key_width(rows: u64) -> usize {
    rows.saturating_sub(1).max(1).ilog10() as usize + 1
}

fn generate(rows: u64, out: &Path) -> anyhow::Result<()> {
    if rows == 0 {
        bail!("--rows must be at least 1");
    }
    let started = Instant::now();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("score", DataType::Float64, false),
        Field::new("signup_day", DataType::Int64, false),
    ]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let file = std::fs::File::create(out).with_context(|| format!("create {}", out.display()))?;
    let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(properties))?;
    let shuffle = Shuffle::new(rows);
    let width = key_width(rows);
    let mut id = String::new();
    for start in (0..rows).step_by(BATCH_ROWS as usize) {
        let end = (start + BATCH_ROWS).min(rows);
        let numbers: Vec<u64> = (start..end).map(|row| shuffle.number(row)).collect();
        let ids = StringArray::from_iter_values(numbers.iter().map(|&n| {
            id.clear();
            let _ = write!(id, "c{n:0width$}");
            id.clone()
        }));
        let names = StringArray::from_iter_values(numbers.iter().map(|&n| {
            let h = mix(n);
            let syllable = |shift: u32| SYLLABLES[((h >> shift) % 32) as usize];
            let mut surname = format!("{}{}{}", syllable(8), syllable(13), syllable(18));
            surname[..1].make_ascii_uppercase();
            format!("{} {surname}", FIRST[(h % 24) as usize])
        }));
        let segments = StringArray::from_iter_values(
            numbers
                .iter()
                .map(|&n| SEGMENTS[((mix(n) >> 23) % 5) as usize]),
        );
        let scores = Float64Array::from_iter_values(
            numbers
                .iter()
                .map(|&n| ((mix(n) >> 26) % 10_000) as f64 / 100.0),
        );
        let days = Int64Array::from_iter_values(
            numbers
                .iter()
                .map(|&n| 18_000 + ((mix(n) >> 40) % 3_000) as i64),
        );
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(ids),
                Arc::new(names),
                Arc::new(segments),
                Arc::new(scores),
                Arc::new(days),
            ],
        )?;
        writer.write(&batch)?;
    }
    let metadata = writer.close()?;
    let size = std::fs::metadata(out)?.len();
    println!(
        "RESULT generate rows={rows} row_groups={} file_mb={:.1} wall_s={:.2} {}",
        metadata.num_row_groups(),
        mib(size),
        started.elapsed().as_secs_f64(),
        memory()?
    );
    Ok(())
}

// ---- lookup ------------------------------------------------------------

/// Writes the key of customer `number` (`c` and `width` digits) into `out`.
fn write_key(out: &mut KeyBuilder, text: &mut [u8; 24], number: u64, width: usize) {
    let mut n = number;
    let digits = key_width(number + 1).max(width);
    text[0] = b'c';
    for slot in text[1..=digits].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.clear();
    // ASCII digits and `c`: always UTF-8.
    out.push(std::str::from_utf8(&text[..=digits]).unwrap_or_default());
}

/// Times `lookups` random lookups on this thread and checks every answer.
fn run_pass(
    index: &LoadedIndex,
    label: &str,
    lookups: u64,
    rng: &mut fastrand::Rng,
) -> anyhow::Result<()> {
    let rows = index.rows();
    if rows == 0 {
        bail!("the index holds no rows");
    }
    let width = key_width(rows);
    let mut key = KeyBuilder::new(1);
    let mut text = [0u8; 24];
    let (mut hits, mut misses, mut cell_bytes) = (0u64, 0u64, 0u64);
    let cpu = cpu_seconds()?;
    let started = Instant::now();
    let mut done = 0u64;
    while done < lookups {
        let reader = index.reader()?;
        let batch = LOOKUPS_PER_READER.min(lookups - done);
        for i in 0..batch {
            let miss = (done + i) % MISS_EVERY == MISS_EVERY - 1;
            let number = if miss {
                rows + rng.u64(0..rows)
            } else {
                rng.u64(0..rows)
            };
            write_key(&mut key, &mut text, number, width);
            let mut cells = 0usize;
            let found = reader.lookup(key.bytes(), &mut |_, cell| {
                cells += 1;
                cell_bytes += match cell {
                    Cell::S(s) | Cell::N(s) => s.len() as u64,
                    Cell::Null | Cell::Bool(_) => 0,
                };
            })?;
            match (found, miss) {
                (true, false) if cells == 4 => hits += 1,
                (false, true) => misses += 1,
                _ => bail!(
                    "key {:?}: found={found} with {cells} cells, expected {}",
                    String::from_utf8_lossy(key.bytes()),
                    if miss { "no row" } else { "a row of 4 cells" }
                ),
            }
        }
        done += batch;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu;
    println!(
        "RESULT pass={label} lookups={lookups} hits={hits} misses={misses} wall_s={wall:.3} cpu_s={cpu:.2} lookups_per_s={:.0} lookups_per_cpu_s={:.0} cell_bytes={cell_bytes} {}",
        lookups as f64 / wall,
        lookups as f64 / cpu.max(0.01),
        memory()?
    );
    Ok(())
}

/// Every file under `dir`.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// Bytes of the files under `dir`: their lengths and the blocks they use.
fn dir_bytes(dir: &Path) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    if !dir.exists() {
        return Ok((0, 0));
    }
    files(dir)?.iter().try_fold((0, 0), |(len, blocks), file| {
        let meta = std::fs::metadata(file)?;
        Ok((len + meta.len(), blocks + meta.blocks() * 512))
    })
}

/// Drops the files under `dir` from the page cache (`posix_fadvise`
/// DONTNEED, through Python's `os` module to keep this example free of
/// unsafe code).
fn evict(dir: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import os, sys\n\
             for p in sys.argv[1:]:\n\
             \x20   fd = os.open(p, os.O_RDONLY)\n\
             \x20   os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\n\
             \x20   os.close(fd)\n",
        )
        .args(files(dir)?)
        .status()
        .context("run python3 to drop the index from the page cache")?;
    if !status.success() {
        bail!("python3 posix_fadvise failed: {status}");
    }
    Ok(())
}

/// Reads the files under `dir` once, so the page cache holds them.
fn read_files(dir: &Path) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut buffer = vec![0u8; 1 << 20];
    for path in files(dir)? {
        let mut file = std::fs::File::open(&path)?;
        while file.read(&mut buffer)? > 0 {}
    }
    Ok(())
}

// ---- process figures ---------------------------------------------------

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// User + system CPU seconds of this process (`/proc/self/stat`, in the
/// kernel's 100 Hz clock ticks).
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `fields[0]` is field 3.
    let ticks = |n: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(n - 3)
            .context("unexpected /proc/self/stat")?
            .parse::<f64>()?)
    };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

/// Peak and current resident memory, in MiB, from `/proc/self/status`.
fn memory() -> anyhow::Result<String> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    Ok(format!(
        "vmhwm_mb={:.1} vmrss_mb={:.1} rss_anon_mb={:.1} rss_file_mb={:.1}",
        kib("VmHWM:") / 1024.0,
        kib("VmRSS:") / 1024.0,
        kib("RssAnon:") / 1024.0,
        kib("RssFile:") / 1024.0
    ))
}
