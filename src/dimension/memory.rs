//! The in-memory index for small dimension tables: columnar (one byte
//! buffer and one end-offset array per column, keys included) with a hash
//! table of row numbers, so a row costs its encoded bytes plus about 4
//! bytes per column and 5 of index, instead of a map of decoded values.

use hashbrown::HashTable;
use std::hash::BuildHasher;

use super::codec::{Cell, Cells};
use super::read::EncodedRow;

/// Why a row could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// An earlier row has the same key.
    Duplicate,
    /// The index outgrew its memory budget.
    OverBudget,
}

/// One column: cell `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
#[derive(Debug, Default)]
struct Column {
    ends: Vec<u32>,
    bytes: Vec<u8>,
}

impl Column {
    fn get(&self, row: usize) -> &[u8] {
        let start = row
            .checked_sub(1)
            .map_or(0, |prev| self.ends[prev] as usize);
        &self.bytes[start..self.ends[row] as usize]
    }

    /// Closes the cell written since the last call; false past 4 GiB.
    fn close_cell(&mut self) -> bool {
        match u32::try_from(self.bytes.len()) {
            Ok(end) => {
                self.ends.push(end);
                true
            }
            Err(_) => false,
        }
    }

    fn heap_bytes(&self) -> usize {
        self.ends.capacity() * 4 + self.bytes.capacity()
    }

    fn shrink(&mut self) {
        self.ends.shrink_to_fit();
        self.bytes.shrink_to_fit();
    }
}

/// A whole dimension table in memory, columnar, with a hash index by key.
#[derive(Debug)]
pub struct MemoryIndex {
    keys: Column,
    columns: Vec<Column>,
    slots: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
    budget: usize,
}

impl MemoryIndex {
    /// An empty index of `columns` kept columns that refuses to grow past
    /// `budget` bytes.
    pub fn new(columns: usize, budget: usize) -> Self {
        Self {
            keys: Column::default(),
            columns: (0..columns).map(|_| Column::default()).collect(),
            slots: HashTable::new(),
            hasher: hashbrown::DefaultHashBuilder::default(),
            budget,
        }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.keys.ends.len()
    }

    /// True when no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the index holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.keys.heap_bytes()
            + self.columns.iter().map(Column::heap_bytes).sum::<usize>()
            + self.slots.capacity() * (std::mem::size_of::<u32>() + 1)
    }

    /// Adds a row; a key seen before or a full budget refuses it.
    pub fn add(&mut self, row: &EncodedRow) -> Result<(), AddError> {
        let key = row.key.bytes();
        if self.find(key).is_some() {
            return Err(AddError::Duplicate);
        }
        let number = u32::try_from(self.len()).map_err(|_| AddError::OverBudget)?;
        self.keys.bytes.extend_from_slice(key);
        let mut fits = self.keys.close_cell();
        let mut cells = Cells::new(&row.cells);
        for column in &mut self.columns {
            cells.next().unwrap_or(Cell::Null).encode(&mut column.bytes);
            fits &= column.close_cell();
        }
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.slots
            .insert_unique(hasher.hash_one(key), number, |&n| {
                hasher.hash_one(keys.get(n as usize))
            });
        if !fits || (number % 4096 == 0 && self.heap_bytes() > self.budget) {
            return Err(AddError::OverBudget);
        }
        Ok(())
    }

    /// Frees the spare capacity the buffers grew with; true when the
    /// index fits its budget.
    pub fn finish(&mut self) -> bool {
        self.keys.shrink();
        self.columns.iter_mut().for_each(Column::shrink);
        self.slots
            .shrink_to_fit(|&n| self.hasher.hash_one(self.keys.get(n as usize)));
        self.heap_bytes() <= self.budget
    }

    /// The row number of `key`.
    pub fn find(&self, key: &[u8]) -> Option<u32> {
        self.slots
            .find(self.hasher.hash_one(key), |&n| {
                self.keys.get(n as usize) == key
            })
            .copied()
    }

    /// The cells of row `row`, in column order.
    pub fn cells(&self, row: u32) -> impl Iterator<Item = Cell<'_>> + '_ {
        self.columns.iter().map(move |column| {
            Cells::new(column.get(row as usize))
                .next()
                .unwrap_or(Cell::Null)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dimension::read::Place;

    fn row(key: &str, cells: &[Cell<'_>]) -> EncodedRow {
        let mut row = EncodedRow::new(1);
        row.start(Place::Line(1));
        row.push_key(Some(key));
        for cell in cells {
            row.push_cell(*cell);
        }
        row
    }

    #[test]
    fn rows_come_back_by_key() {
        let mut index = MemoryIndex::new(2, usize::MAX);
        for n in 0..10_000 {
            let name = format!("name {n}");
            let score = n.to_string();
            index
                .add(&row(&format!("k{n}"), &[Cell::S(&name), Cell::N(&score)]))
                .unwrap();
        }
        index.add(&row("empty", &[Cell::Null])).unwrap();
        assert!(index.finish());
        assert_eq!(index.len(), 10_001);
        let found = index.find(b"k4242").unwrap();
        assert_eq!(
            index.cells(found).collect::<Vec<_>>(),
            [Cell::S("name 4242"), Cell::N("4242")]
        );
        let empty = index.find(b"empty").unwrap();
        assert_eq!(
            index.cells(empty).collect::<Vec<_>>(),
            [Cell::Null, Cell::Null]
        );
        assert!(index.find(b"k10000").is_none());
        assert_eq!(index.add(&row("k7", &[])), Err(AddError::Duplicate));
    }

    #[test]
    fn a_budget_stops_growth() {
        let mut index = MemoryIndex::new(1, 64 * 1024);
        let text = "x".repeat(100);
        let refused = (0..100_000)
            .map(|n| index.add(&row(&format!("k{n}"), &[Cell::S(&text)])))
            .find(Result::is_err);
        assert_eq!(refused, Some(Err(AddError::OverBudget)));
    }
}
