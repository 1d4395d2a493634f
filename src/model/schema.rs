//! A source table's primary key, as sinks need it to key their rows.

use std::sync::Arc;

/// The scalar type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// String key.
    S,
    /// Number key.
    N,
    /// Binary key.
    B,
}

/// One primary-key attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    /// Attribute name.
    pub name: String,
    /// Attribute type.
    pub kind: KeyKind,
}

/// How a table's change versions are made (see [`super::ChangeEvent`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VersionScheme {
    /// DynamoDB Streams sequence numbers (snapshots: one above the highest).
    #[default]
    Sequence,
    /// Kinesis time versions: `micros * 10^20 + tie` (`decode::kinesis`).
    Time,
}

/// A source table: its name and primary key (partition key first, then the sort key if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Table name.
    pub name: Arc<str>,
    /// Key attributes, partition key first.
    pub keys: Vec<KeyAttribute>,
    /// How the table's change versions are made.
    pub versions: VersionScheme,
}

impl TableSchema {
    /// A schema from `(attribute, type)` pairs, partition key first.
    pub fn new(name: &str, keys: &[(&str, KeyKind)]) -> Self {
        Self {
            name: Arc::from(name),
            keys: keys
                .iter()
                .map(|(name, kind)| KeyAttribute {
                    name: (*name).to_owned(),
                    kind: *kind,
                })
                .collect(),
            versions: VersionScheme::Sequence,
        }
    }
}
