//! Typed columns inferred from the items themselves: the kinds values call
//! for and how columns widen, column names for attribute names, one
//! table's live columns and the changes a batch needs, and the history
//! sinks keep of those changes. Pure logic; sinks do the DDL.

pub mod history;
pub mod kind;
pub mod live;
pub mod naming;
pub mod raw;
pub mod stats;

pub use history::SchemaEvent;
pub use kind::{ColumnKind, UnknownKind};
pub use live::{LiveColumn, LiveSchema, SchemaChange, SinkKinds};
pub use stats::{AttributeStats, SampleStats};
