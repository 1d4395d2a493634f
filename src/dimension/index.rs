//! A built dimension index, in memory or on disk, behind one lookup API;
//! and the handle joins read it through, which a reload swaps atomically.

use std::sync::{Arc, PoisonError, RwLock};

use super::codec::{Cell, Cells};
use super::disk::{DiskIndex, DiskReader};
use super::memory::MemoryIndex;
use super::read::RowSpec;
use super::source::SourceId;
use super::DimensionError;

/// Where a built index keeps its rows.
#[derive(Debug)]
pub enum IndexStore {
    /// Columnar, in memory.
    Memory(MemoryIndex),
    /// Memory-mapped LMDB on disk.
    Disk(DiskIndex),
}

/// A complete index of one version of a dimension file.
#[derive(Debug)]
pub struct LoadedIndex {
    store: IndexStore,
    source: SourceId,
    rows: u64,
}

impl LoadedIndex {
    /// An index of `rows` rows built from `source`.
    pub fn new(store: IndexStore, source: SourceId, rows: u64) -> Self {
        Self {
            store,
            source,
            rows,
        }
    }

    /// `memory` or `disk`.
    pub fn mode(&self) -> &'static str {
        match self.store {
            IndexStore::Memory(_) => "memory",
            IndexStore::Disk(_) => "disk",
        }
    }

    /// Rows held.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file version it was built from.
    pub fn source(&self) -> &SourceId {
        &self.source
    }

    /// A reader for a run of lookups (hold it for a chunk, not longer).
    pub fn reader(&self) -> Result<IndexReader<'_>, DimensionError> {
        Ok(match &self.store {
            IndexStore::Memory(index) => IndexReader::Memory(index),
            IndexStore::Disk(index) => IndexReader::Disk(index.reader()?),
        })
    }
}

/// Lookups against one index.
pub enum IndexReader<'a> {
    /// In memory.
    Memory(&'a MemoryIndex),
    /// On disk, in one read transaction.
    Disk(DiskReader<'a>),
}

impl IndexReader<'_> {
    /// Calls `visit` with each cell (column index, cell) of the row keyed
    /// `key`; false when no row has that key.
    pub fn lookup(
        &self,
        key: &[u8],
        visit: &mut dyn FnMut(usize, Cell<'_>),
    ) -> Result<bool, DimensionError> {
        match self {
            Self::Memory(index) => {
                let Some(row) = index.find(key) else {
                    return Ok(false);
                };
                index.cells(row).enumerate().for_each(|(i, c)| visit(i, c));
                Ok(true)
            }
            Self::Disk(reader) => {
                let Some(row) = reader.get(key)? else {
                    return Ok(false);
                };
                Cells::new(row).enumerate().for_each(|(i, c)| visit(i, c));
                Ok(true)
            }
        }
    }
}

/// A dimension table as joins see it: its name, key and columns, and the
/// index in use, which a reload replaces whole (a chunk joined while the
/// swap happens uses the old index or the new one, never a mix).
#[derive(Debug)]
pub struct DimensionTable {
    name: String,
    spec: RowSpec,
    current: RwLock<Option<Arc<LoadedIndex>>>,
}

impl DimensionTable {
    /// A table named `name` with no index yet.
    pub fn new(name: impl Into<String>, spec: RowSpec) -> Self {
        Self {
            name: name.into(),
            spec,
            current: RwLock::new(None),
        }
    }

    /// The name joins refer to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key and kept columns.
    pub fn spec(&self) -> &RowSpec {
        &self.spec
    }

    /// The index in use, if one was installed.
    pub fn current(&self) -> Option<Arc<LoadedIndex>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Installs a newly built index; joins that already hold the one it
    /// replaces finish their chunk with it.
    pub fn install(&self, index: LoadedIndex) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(index));
    }
}
