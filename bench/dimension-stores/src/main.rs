//! Benchmark of embedded key-value stores for the dimension lookup index.
//!
//! Usage:
//!   dimension-stores build  <store> <dir> <rows>
//!   dimension-stores lookup <store> <dir> <rows> [lookups]
//!
//! store: lmdb | lmdb-compact | lmdb-nowritemap | redb | fjall
//!
//! `build` creates the index from <rows> generated rows inserted in a
//! pseudo-random key order. `lookup` reopens it (read-only where the store
//! supports it), evicts its files from the page cache, then runs one cold
//! pass and two warm passes of random point lookups, verifying every value.
//! Every result line starts with `RESULT` and is `key=value` separated.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Bounded block/page cache given to redb and fjall, in bytes.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// LMDB: puts per write transaction during the build.
const LMDB_TXN_PUTS: u64 = 100_000;
/// redb: inserts per write transaction during the build.
const REDB_TXN_PUTS: u64 = 1_000_000;
/// fjall: inserts per write batch during the build.
const FJALL_BATCH: u64 = 10_000;
const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("dim");

// ---------------------------------------------------------------------------
// Deterministic data

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Pseudo-random permutation of 0..n: a 4-round Feistel network over the
/// smallest even power of two >= n, with cycle walking.
struct Permutation {
    n: u64,
    half_bits: u32,
}

impl Permutation {
    fn new(n: u64) -> Self {
        let mut bits = 64 - (n.max(2) - 1).leading_zeros();
        if bits % 2 == 1 {
            bits += 1;
        }
        Permutation {
            n,
            half_bits: bits / 2,
        }
    }

    fn apply(&self, i: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let mut x = i;
        loop {
            let (mut l, mut r) = (x >> self.half_bits, x & mask);
            for round in 0..4u64 {
                let f = splitmix64(r ^ (round << 56) ^ 0x5EED) & mask;
                (l, r) = (r, l ^ f);
            }
            x = (l << self.half_bits) | r;
            if x < self.n {
                return x;
            }
        }
    }
}

/// Key text of row `id`: "c" followed by 10 digits (11 bytes).
fn key_of(id: u64, buf: &mut Vec<u8>) {
    use std::io::Write;
    buf.clear();
    write!(buf, "c{id:010}").unwrap();
}

/// Value of row `id`: 52..=68 pseudo-random bytes (60 on average), standing in
/// for a compact binary encoding of 4-5 column values.
fn value_of(id: u64, buf: &mut Vec<u8>) {
    buf.clear();
    let mut s = splitmix64(id ^ 0xD1B5_4A32_D192_ED03);
    let len = 52 + (s % 17) as usize;
    while buf.len() < len {
        s = splitmix64(s);
        let take = (len - buf.len()).min(8);
        buf.extend_from_slice(&s.to_le_bytes()[..take]);
    }
}

// ---------------------------------------------------------------------------
// Process measurements

fn status_kb(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in s.lines() {
        if let Some(rest) = line.strip_prefix(field) {
            if let Some(rest) = rest.strip_prefix(':') {
                return rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0);
            }
        }
    }
    0
}

fn mem_report(tag: &str) -> String {
    format!(
        "{tag}_vmhwm_mb={:.1} {tag}_rss_mb={:.1} {tag}_rss_anon_mb={:.1} {tag}_rss_file_mb={:.1}",
        status_kb("VmHWM") as f64 / 1024.0,
        status_kb("VmRSS") as f64 / 1024.0,
        status_kb("RssAnon") as f64 / 1024.0,
        status_kb("RssFile") as f64 / 1024.0,
    )
}

fn cpu_time() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time of the calling thread: the rate per CPU-second is what one core
/// delivers, whatever else the machine is running.
fn thread_cpu_time() -> Duration {
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or("?")
        .to_string()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// (apparent bytes, allocated bytes) of every file under `dir`.
fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated) = (0, 0);
    for f in files_in(dir) {
        let m = fs::metadata(&f).unwrap();
        apparent += m.len();
        allocated += m.blocks() * 512;
    }
    (apparent, allocated)
}

/// Bytes of the files under `dir` that are resident in the page cache.
fn resident_bytes(dir: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
    let mut total = 0u64;
    for f in files_in(dir) {
        let file = fs::File::open(&f).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        if len == 0 {
            continue;
        }
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert!(p != libc::MAP_FAILED, "mmap {f:?}");
            let mut vec = vec![0u8; len.div_ceil(page)];
            let rc = libc::mincore(p, len, vec.as_mut_ptr());
            assert_eq!(rc, 0, "mincore {f:?}");
            total += vec.iter().filter(|b| **b & 1 == 1).count() as u64 * page as u64;
            libc::munmap(p, len);
        }
    }
    total
}

/// Drop every file under `dir` from the page cache.
fn evict(dir: &Path) {
    use std::os::fd::AsRawFd;
    for f in files_in(dir) {
        let file = fs::File::open(&f).unwrap();
        unsafe {
            libc::fdatasync(file.as_raw_fd());
            let rc = libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            assert_eq!(rc, 0, "posix_fadvise {f:?}");
        }
    }
}

/// Read every file under `dir` once, so that it sits in the page cache.
fn preload(dir: &Path) {
    use std::io::Read;
    let mut buf = vec![0u8; 1 << 20];
    for f in files_in(dir) {
        let mut file = fs::File::open(&f).unwrap();
        while file.read(&mut buf).unwrap() > 0 {}
    }
}

/// Samples RssAnon and RssFile every 50 ms: VmHWM alone does not tell
/// anonymous memory from mapped page cache.
struct PeakSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<(u64, u64)>,
}

impl PeakSampler {
    fn start() -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut anon, mut file) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                anon = anon.max(status_kb("RssAnon"));
                file = file.max(status_kb("RssFile"));
                std::thread::sleep(Duration::from_millis(50));
            }
            (anon, file)
        });
        PeakSampler { stop, handle }
    }

    /// (peak RssAnon, peak RssFile) in kB.
    fn stop(self) -> (u64, u64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------------------
// Stores

trait Reader {
    /// Looks `key` up and calls `check` with the stored value.
    fn get(&self, key: &[u8], check: &mut dyn FnMut(Option<&[u8]>));
}

fn lmdb_map_size(rows: u64) -> usize {
    // Random-order inserts leave B-tree leaves ~70% full: ~130 bytes per row
    // at 11-byte keys and 60-byte values. Leave ample headroom; the map is
    // only address space and, with WRITE_MAP, a sparse file.
    ((rows * 256).max(1 << 30) as usize).next_multiple_of(1 << 20)
}

/// Builds into `<dir>.tmp`, then writes a compacting copy (free pages left
/// behind by copy-on-write dropped, pages renumbered in tree order) to
/// `<dir>/data.mdb`.
fn build_lmdb_compact(dir: &Path, rows: u64) {
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).unwrap();
    }
    let env = build_lmdb(&tmp, rows, true);
    let t = Instant::now();
    fs::create_dir_all(dir).unwrap();
    let file = env
        .copy_to_path(dir.join("data.mdb"), heed::CompactionOption::Enabled)
        .unwrap();
    file.sync_all().unwrap();
    drop(env);
    fs::remove_dir_all(&tmp).unwrap();
    eprintln!("lmdb: compacting copy {:.1}s", t.elapsed().as_secs_f64());
}

fn build_lmdb(dir: &Path, rows: u64, write_map: bool) -> heed::Env<heed::WithoutTls> {
    use heed::{types::Bytes, CommitOrAbort, EnvFlags, EnvOpenOptions};
    fs::create_dir_all(dir).unwrap();
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    opts.map_size(lmdb_map_size(rows)).max_dbs(1);
    let mut flags = EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC | EnvFlags::NO_READ_AHEAD;
    if write_map {
        flags |= EnvFlags::WRITE_MAP;
    }
    // SAFETY: the directory belongs to this process alone while it builds; the
    // flags give up durability of intermediate commits, which a rebuild covers,
    // and force_sync() below makes the finished index durable.
    unsafe { opts.flags(flags) };
    let env = unsafe { opts.open(dir) }.expect("open lmdb env");
    let wtxn = env.write_txn().unwrap();
    let db = env
        .create_databases_and_commit(wtxn, |dbo, wtxn| {
            dbo.create_database::<Bytes, Bytes>(wtxn, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit();
    let perm = Permutation::new(rows);
    let (mut k, mut v) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < rows {
        let mut wtxn = env.write_txn().unwrap();
        let end = (i + LMDB_TXN_PUTS).min(rows);
        for j in i..end {
            let id = perm.apply(j);
            key_of(id, &mut k);
            value_of(id, &mut v);
            db.put(&mut wtxn, &k, &v).unwrap();
        }
        wtxn.commit().unwrap();
        i = end;
    }
    env.force_sync().unwrap();
    let stat = env.unnamed_database_stat();
    eprintln!("lmdb stat: {stat:?}");
    env
}

struct LmdbReader {
    _env: heed::Env<heed::WithoutTls>,
    db: heed::Database<'static, heed::types::Bytes, heed::types::Bytes>,
    rtxn: heed::RoTxn<'static, heed::WithoutTls>,
}

fn open_lmdb(dir: &Path) -> Box<dyn Reader> {
    use heed::{types::Bytes, CommitOrAbort, EnvFlags, EnvOpenOptions};
    let mut opts = EnvOpenOptions::new().read_txn_without_tls();
    // map_size: LMDB uses the larger of this and the file size on open.
    opts.map_size(1 << 20).max_dbs(1);
    // SAFETY: the index is immutable once built and nothing writes it while
    // it is open, so skipping the lock file (NO_LOCK) is sound.
    unsafe { opts.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK | EnvFlags::NO_READ_AHEAD) };
    // SAFETY: the file is not modified while mapped (see above).
    let env: heed::Env<heed::WithoutTls> = unsafe { opts.open(dir) }.expect("open lmdb env");
    let env: &'static heed::Env<heed::WithoutTls> = Box::leak(Box::new(env));
    let rtxn = env.read_txn().unwrap();
    let db = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| {
            dbo.open_database::<Bytes, Bytes>(rtxn, None)
                .map(CommitOrAbort::<_, ()>::Commit)
        })
        .unwrap()
        .unwrap_commit()
        .expect("unnamed database");
    // One long-lived read transaction: the index never changes, so there is
    // nothing to pin, and every lookup reuses it.
    let rtxn = env.clone().static_read_txn().unwrap();
    Box::new(LmdbReader {
        _env: env.clone(),
        db,
        rtxn,
    })
}

impl Reader for LmdbReader {
    fn get(&self, key: &[u8], check: &mut dyn FnMut(Option<&[u8]>)) {
        check(self.db.get(&self.rtxn, key).unwrap())
    }
}

fn build_redb(dir: &Path, rows: u64) {
    fs::create_dir_all(dir).unwrap();
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES as usize)
        .create(dir.join("index.redb"))
        .expect("create redb");
    let perm = Permutation::new(rows);
    let (mut k, mut v) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < rows {
        let mut txn = db.begin_write().unwrap();
        let end = (i + REDB_TXN_PUTS).min(rows);
        // Only the last commit needs to reach the disk.
        if end < rows {
            txn.set_durability(redb::Durability::None).unwrap();
        }
        {
            let mut table = txn.open_table(REDB_TABLE).unwrap();
            for j in i..end {
                let id = perm.apply(j);
                key_of(id, &mut k);
                value_of(id, &mut v);
                table.insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
        i = end;
    }
    drop(db);
}

struct RedbReader {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

fn open_redb(dir: &Path) -> Box<dyn Reader> {
    use redb::ReadableDatabase;
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES as usize)
        .open_read_only(dir.join("index.redb"))
        .expect("open redb");
    let txn = db.begin_read().unwrap();
    let table = txn.open_table(REDB_TABLE).unwrap();
    Box::new(RedbReader { table })
}

impl Reader for RedbReader {
    fn get(&self, key: &[u8], check: &mut dyn FnMut(Option<&[u8]>)) {
        use redb::ReadableTable;
        let g = self.table.get(key).unwrap();
        check(g.as_ref().map(|g| g.value()))
    }
}

fn fjall_open(dir: &Path) -> (fjall::Database, fjall::Keyspace) {
    let db = fjall::Database::builder(dir)
        .cache_size(CACHE_BYTES)
        .open()
        .expect("open fjall");
    let ks = db
        .keyspace("dim", || {
            // Every lookup of the join is expected to find its row.
            fjall::KeyspaceCreateOptions::default().expect_point_read_hits(true)
        })
        .unwrap();
    (db, ks)
}

fn build_fjall(dir: &Path, rows: u64) {
    let (db, ks) = fjall_open(dir);
    let perm = Permutation::new(rows);
    let (mut k, mut v) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < rows {
        let mut batch = db.batch();
        let end = (i + FJALL_BATCH).min(rows);
        for j in i..end {
            let id = perm.apply(j);
            key_of(id, &mut k);
            value_of(id, &mut v);
            batch.insert(&ks, k.as_slice(), v.as_slice());
        }
        batch.commit().unwrap();
        i = end;
    }
    // Flush the memtable into a table so the next open has no journal to
    // replay, then let background compaction settle.
    ks.rotate_memtable_and_wait().unwrap();
    let t = Instant::now();
    if std::env::var_os("FJALL_MAJOR_COMPACT").is_some() {
        ks.major_compact().unwrap();
    }
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if db.outstanding_flushes() == 0 && db.active_compactions() == 0 {
            std::thread::sleep(Duration::from_millis(500));
            if db.outstanding_flushes() == 0 && db.active_compactions() == 0 {
                break;
            }
        }
    }
    db.persist(fjall::PersistMode::SyncAll).unwrap();
    eprintln!(
        "fjall: settle {:.1}s tables={} l0_tables={}",
        t.elapsed().as_secs_f64(),
        ks.table_count(),
        ks.l0_table_count()
    );
}

struct FjallReader {
    _db: fjall::Database,
    ks: fjall::Keyspace,
}

fn open_fjall(dir: &Path) -> Box<dyn Reader> {
    let (db, ks) = fjall_open(dir);
    eprintln!(
        "fjall: tables={} l0_tables={}",
        ks.table_count(),
        ks.l0_table_count()
    );
    Box::new(FjallReader { _db: db, ks })
}

impl Reader for FjallReader {
    fn get(&self, key: &[u8], check: &mut dyn FnMut(Option<&[u8]>)) {
        let v = self.ks.get(key).unwrap();
        check(v.as_deref())
    }
}

// ---------------------------------------------------------------------------

/// Returns (lookups per wall second, lookups per thread-CPU second,
/// lookups per wall second over the first 100k).
fn lookup_pass(r: &dyn Reader, rows: u64, lookups: u64, seed: u64) -> (f64, f64, f64) {
    let (mut k, mut v) = (Vec::new(), Vec::new());
    let mut s = seed;
    let c = thread_cpu_time();
    let t = Instant::now();
    let mut first = 0.0;
    for n in 0..lookups {
        s = splitmix64(s);
        let id = s % rows;
        key_of(id, &mut k);
        value_of(id, &mut v);
        r.get(&k, &mut |got| match got {
            Some(got) if got == v.as_slice() => {}
            other => panic!("row {id}: wrong value {other:?}"),
        });
        if n + 1 == 100_000 {
            first = 100_000.0 / t.elapsed().as_secs_f64();
        }
    }
    let wall = t.elapsed().as_secs_f64();
    let cpu = (thread_cpu_time() - c).as_secs_f64();
    (lookups as f64 / wall, lookups as f64 / cpu, first)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: dimension-stores build|lookup <lmdb|lmdb-compact|lmdb-nowritemap|redb|fjall> <dir> <rows> [lookups]";
    if args.len() < 5 {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let (cmd, store, dir) = (args[1].as_str(), args[2].as_str(), PathBuf::from(&args[3]));
    let rows: u64 = args[4].parse().expect("rows");
    let lookups: u64 = args
        .get(5)
        .map(|s| s.parse().expect("lookups"))
        .unwrap_or(2_000_000);

    match cmd {
        "build" => {
            if dir.exists() {
                fs::remove_dir_all(&dir).unwrap();
            }
            let sampler = PeakSampler::start();
            let (t, c) = (Instant::now(), cpu_time());
            match store {
                "lmdb" => drop(build_lmdb(&dir, rows, true)),
                "lmdb-nowritemap" => drop(build_lmdb(&dir, rows, false)),
                "lmdb-compact" => build_lmdb_compact(&dir, rows),
                "redb" => build_redb(&dir, rows),
                "fjall" => build_fjall(&dir, rows),
                _ => panic!("{usage}"),
            }
            let (wall, cpu) = (t.elapsed(), cpu_time() - c);
            let (peak_anon, peak_file) = sampler.stop();
            let (apparent, allocated) = disk_usage(&dir);
            println!(
                "RESULT phase=build store={store} rows={rows} wall_s={:.1} cpu_s={:.1} \
                 rows_per_s={:.0} loadavg={} disk_apparent_mb={:.0} disk_allocated_mb={:.0} \
                 build_peak_rss_anon_mb={:.1} build_peak_rss_file_mb={:.1} {}",
                wall.as_secs_f64(),
                cpu.as_secs_f64(),
                rows as f64 / wall.as_secs_f64(),
                loadavg(),
                mb(apparent),
                mb(allocated),
                peak_anon as f64 / 1024.0,
                peak_file as f64 / 1024.0,
                mem_report("after_build"),
            );
        }
        "lookup" => {
            evict(&dir);
            let resident_after_evict = resident_bytes(&dir);
            let t = Instant::now();
            let reader: Box<dyn Reader> = match store {
                "lmdb" | "lmdb-nowritemap" | "lmdb-compact" => open_lmdb(&dir),
                "redb" => open_redb(&dir),
                "fjall" => open_fjall(&dir),
                _ => panic!("{usage}"),
            };
            let open_ms = t.elapsed().as_secs_f64() * 1000.0;
            let open_mem = mem_report("after_open");
            let (cold, cold_cpu, cold_first) = lookup_pass(&*reader, rows, lookups, 1);
            let resident_after_cold = resident_bytes(&dir);
            let cold_mem = mem_report("after_cold");
            preload(&dir);
            let (warm1, warm1_cpu, _) = lookup_pass(&*reader, rows, lookups, 2);
            let (warm2, warm2_cpu, _) = lookup_pass(&*reader, rows, lookups, 3);
            let (_, allocated) = disk_usage(&dir);
            println!(
                "RESULT phase=lookup store={store} rows={rows} lookups={lookups} open_ms={open_ms:.1} \
                 cold_first100k_per_s={cold_first:.0} cold_per_s={cold:.0} cold_per_cpu_s={cold_cpu:.0} \
                 warm1_per_s={warm1:.0} warm1_per_cpu_s={warm1_cpu:.0} warm2_per_s={warm2:.0} \
                 warm2_per_cpu_s={warm2_cpu:.0} loadavg={} index_mb={:.0} resident_after_evict_mb={:.1} \
                 resident_after_cold_mb={:.1} {open_mem} {cold_mem} {}",
                loadavg(),
                mb(allocated),
                mb(resident_after_evict),
                mb(resident_after_cold),
                mem_report("after_warm"),
            );
        }
        _ => panic!("{usage}"),
    }
}
