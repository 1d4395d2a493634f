//! Builds the index of one dimension file version: in memory or on disk
//! as the mode (or, for `auto`, the size) says; disk indexes are built in a
//! directory of their own beside the one in use, described by a manifest,
//! and renamed into place only when complete, so a failed or interrupted
//! build leaves nothing that could be mistaken for an index.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::config::DimensionMode;
use super::disk::{self, DiskIndex};
use super::index::{IndexStore, LoadedIndex};
use super::memory::{AddError, MemoryIndex};
use super::read::{read_rows, DimensionFormat, ReadCounts, RowSpec};
use super::source::SourceId;
use super::DimensionError;

const MANIFEST: &str = "manifest.json";
/// Bumped when the index layout changes, so older indexes are rebuilt.
const LAYOUT: u32 = 1;

/// What a complete disk index records about itself.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    layout: u32,
    source: SourceId,
    key: Vec<String>,
    columns: Vec<String>,
    rows: u64,
    keyless: u64,
    built: String,
}

/// One build: which file version, where it was fetched to, and how to index it.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The dimension's name (logs).
    pub name: &'a str,
    /// The file version.
    pub source: &'a SourceId,
    /// The local copy to read.
    pub file: &'a Path,
    /// Its format.
    pub format: DimensionFormat,
    /// Key and kept columns.
    pub spec: &'a RowSpec,
    /// Memory, disk, or auto.
    pub mode: DimensionMode,
    /// Largest in-memory index `auto` builds, in bytes.
    pub memory_budget: usize,
    /// This dimension's directory of disk indexes.
    pub index_dir: &'a Path,
}

/// A disk index in `index_dir` built from `source` with `spec`, if one is there.
pub fn reuse(index_dir: &Path, source: &SourceId, spec: &RowSpec) -> Option<LoadedIndex> {
    let entries = std::fs::read_dir(index_dir).ok()?;
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(manifest) = read_manifest(&dir) else {
            continue;
        };
        if manifest.layout != LAYOUT
            || &manifest.source != source
            || manifest.key != spec.key
            || manifest.columns != spec.columns
        {
            continue;
        }
        match DiskIndex::open(&dir) {
            Ok(index) => {
                return Some(LoadedIndex::new(
                    IndexStore::Disk(index),
                    source.clone(),
                    manifest.rows,
                ))
            }
            Err(err) => {
                tracing::warn!(dir = %dir.display(), "a built dimension index cannot be opened ({err}); building again")
            }
        }
    }
    None
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Builds the index `request` describes.
pub fn build(request: &BuildRequest<'_>) -> Result<LoadedIndex, DimensionError> {
    let started = Instant::now();
    let in_memory = match request.mode {
        DimensionMode::Memory => true,
        DimensionMode::Disk => false,
        DimensionMode::Auto => request.source.size <= request.memory_budget as u64,
    };
    if in_memory {
        let budget = match request.mode {
            DimensionMode::Memory => usize::MAX,
            _ => request.memory_budget,
        };
        match build_in_memory(request, budget)? {
            Some(index) => {
                log_built(request, &index, started.elapsed());
                return Ok(index);
            }
            None => tracing::info!(
                dimension = request.name,
                budget_mb = request.memory_budget >> 20,
                "the dimension table outgrew the memory budget: indexing it on disk"
            ),
        }
    }
    let index = build_on_disk(request)?;
    log_built(request, &index, started.elapsed());
    Ok(index)
}

fn log_built(request: &BuildRequest<'_>, index: &LoadedIndex, took: Duration) {
    metrics::gauge!(crate::metric_names::DIMENSION_ROWS, "dimension" => request.name.to_owned())
        .set(index.rows() as f64);
    metrics::gauge!(crate::metric_names::DIMENSION_BUILD_SECONDS, "dimension" => request.name.to_owned())
        .set(took.as_secs_f64());
    tracing::info!(
        dimension = request.name,
        path = %request.source.location,
        mode = index.mode(),
        rows = index.rows(),
        seconds = format!("{:.1}", took.as_secs_f64()),
        "dimension index built"
    );
}

/// Logs progress every few seconds while a large file is read.
fn progress(name: &str) -> impl FnMut(u64) + '_ {
    let mut last = Instant::now();
    move |rows| {
        if last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            tracing::info!(dimension = name, rows, "building the dimension index");
        }
    }
}

/// The in-memory index, or `None` when it outgrew `budget`.
fn build_in_memory(
    request: &BuildRequest<'_>,
    budget: usize,
) -> Result<Option<LoadedIndex>, DimensionError> {
    let name = request.source.location.as_str();
    let mut index = MemoryIndex::new(request.spec.columns.len(), budget);
    let mut over_budget = false;
    let mut report = progress(request.name);
    let result = read_rows(
        request.file,
        name,
        request.format,
        request.spec,
        &mut |row| match index.add(row) {
            Ok(()) => {
                report(index.len() as u64);
                Ok(())
            }
            Err(AddError::Duplicate) => Err(DimensionError::DuplicateKey {
                path: name.to_owned(),
                place: row.place.to_string(),
                key: super::codec::key_display(row.key.bytes(), request.spec.key.len()),
            }),
            Err(AddError::OverBudget) => {
                over_budget = true;
                Err(DimensionError::File {
                    path: name.to_owned(),
                    problem: "over the memory budget".into(),
                })
            }
        },
    );
    if over_budget {
        return Ok(None);
    }
    let counts = result?;
    if !index.finish() && budget != usize::MAX {
        return Ok(None);
    }
    warn_keyless(request, counts);
    let rows = index.len() as u64;
    Ok(Some(LoadedIndex::new(
        IndexStore::Memory(index),
        request.source.clone(),
        rows,
    )))
}

fn warn_keyless(request: &BuildRequest<'_>, counts: ReadCounts) {
    if counts.keyless > 0 {
        tracing::warn!(
            dimension = request.name,
            path = %request.source.location,
            rows = counts.keyless,
            "dimension rows without a key value were skipped (they could never join)"
        );
    }
}

/// Builds a disk index in a directory of its own and renames it into place.
fn build_on_disk(request: &BuildRequest<'_>) -> Result<LoadedIndex, DimensionError> {
    let dir = request.index_dir;
    std::fs::create_dir_all(dir).map_err(|e| DimensionError::io(dir.display(), e))?;
    remove_abandoned_builds(dir);
    let stamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let building = dir.join(format!("building-{}-{stamp}", std::process::id()));
    let ready = dir.join(format!("index-{stamp}"));
    std::fs::create_dir(&building).map_err(|e| DimensionError::io(building.display(), e))?;
    let result = build_into(request, &building).and_then(|counts| {
        std::fs::rename(&building, &ready).map_err(|e| DimensionError::io(ready.display(), e))?;
        warn_keyless(request, counts);
        let index = DiskIndex::open(&ready)?;
        Ok(LoadedIndex::new(
            IndexStore::Disk(index),
            request.source.clone(),
            counts.rows,
        ))
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    result
}

fn build_into(request: &BuildRequest<'_>, building: &Path) -> Result<ReadCounts, DimensionError> {
    let name = request.source.location.as_str();
    let feed = Box::new(
        |on_row: &mut dyn FnMut(&super::read::EncodedRow) -> Result<(), DimensionError>| {
            read_rows(request.file, name, request.format, request.spec, on_row)
        },
    );
    let counts = disk::build(
        building,
        name,
        request.spec.key.len(),
        feed,
        &mut progress(request.name),
    )?;
    let manifest = Manifest {
        layout: LAYOUT,
        source: request.source.clone(),
        key: request.spec.key.clone(),
        columns: request.spec.columns.clone(),
        rows: counts.rows,
        keyless: counts.keyless,
        built: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    };
    let path = building.join(MANIFEST);
    let text =
        serde_json::to_vec_pretty(&manifest).map_err(|e| DimensionError::store(building, e))?;
    write_synced(&path, &text).map_err(|e| DimensionError::io(path.display(), e))?;
    Ok(counts)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Removes the `building-PID-*` directories and `download-PID` files of
/// processes that no longer run (left by a crash).
fn remove_abandoned_builds(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| {
                n.strip_prefix("building-")
                    .or_else(|| n.strip_prefix("download-"))
            })
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if PathBuf::from(format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}

/// Removes this dimension's complete indexes built from other versions
/// than `keep`. A join still reading a removed index is unaffected: its
/// files stay mapped until it lets go.
pub fn remove_other_indexes(index_dir: &Path, keep: &SourceId) {
    let Ok(entries) = std::fs::read_dir(index_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        let is_index = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("index-"));
        if is_index && read_manifest(&dir).is_none_or(|m| &m.source != keep) {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
