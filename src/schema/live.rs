//! One target table's typed columns as they stand, and the changes a batch
//! of items calls for: new columns for new attributes, wider columns for
//! values that no longer fit.

use std::collections::BTreeMap;

use super::kind::ColumnKind;
use super::naming::column_name;
use crate::model::{AttributeValue, Item, SequenceNumber};

/// One typed column: the attribute it holds, its name and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveColumn {
    /// Top-level attribute.
    pub attribute: String,
    /// Column name (see [`super::naming`]).
    pub column: String,
    /// Column kind.
    pub kind: ColumnKind,
}

/// A column added, or widened in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// Top-level attribute.
    pub attribute: String,
    /// Column name.
    pub column: String,
    /// The kind before; `None` for a new column.
    pub from: Option<ColumnKind>,
    /// The kind after.
    pub to: ColumnKind,
    /// Version of the first change that needed it.
    pub version: SequenceNumber,
}

/// How one sink holds each column kind, and which widenings it can make
/// in place without losing a value.
pub trait SinkKinds {
    /// The column type of `kind` in the sink's own terms (`Nullable(Int64)`, `bigint`).
    fn sink_type(&self, kind: ColumnKind) -> String;

    /// True when a column of kind `from` can become `to` in place, every
    /// value it holds converted exactly.
    fn can_widen(&self, from: ColumnKind, to: ColumnKind) -> bool;

    /// The narrowest kind of this sink that holds `value`; `None` for NULL.
    fn of_value(&self, value: &AttributeValue) -> Option<ColumnKind> {
        ColumnKind::of_value(value)
    }

    /// True when this sink's column of `kind` holds `value` without loss.
    fn holds(&self, kind: ColumnKind, value: &AttributeValue) -> bool {
        kind.holds(value)
    }

    /// The kind this sink's column of `kind` must become to hold `value` too.
    fn widened(&self, kind: ColumnKind, value: &AttributeValue) -> ColumnKind {
        kind.widened_for(value)
    }
}

/// The typed columns of one target table, by attribute.
#[derive(Debug, Clone, Default)]
pub struct LiveSchema {
    columns: BTreeMap<String, LiveColumn>,
    keys: Vec<String>,
    reserved: Vec<String>,
}

impl LiveSchema {
    /// No typed columns yet; `keys` (the table's key attributes, which have
    /// columns of their own) never get one, and column names in `reserved`
    /// (the sink's own columns) are escaped.
    pub fn new(keys: Vec<String>, reserved: &[&str]) -> Self {
        Self {
            columns: BTreeMap::new(),
            keys,
            reserved: reserved.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    /// The column name of `attribute` in this table.
    pub fn column_name(&self, attribute: &str) -> String {
        column_name(attribute, |name| {
            self.reserved.iter().any(|r| r.eq_ignore_ascii_case(name))
                || self.keys.iter().any(|k| k.eq_ignore_ascii_case(name))
        })
    }

    /// The typed columns, in attribute order.
    pub fn columns(&self) -> impl Iterator<Item = &LiveColumn> {
        self.columns.values()
    }

    /// The column of `attribute`, if it has one.
    pub fn column(&self, attribute: &str) -> Option<&LiveColumn> {
        self.columns.get(attribute)
    }

    /// How many typed columns there are.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// True without typed columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Sets a column as the sink found or made it.
    pub fn set(&mut self, column: LiveColumn) {
        self.columns.insert(column.attribute.clone(), column);
    }

    /// Records a change the sink has made.
    pub fn apply(&mut self, change: &SchemaChange) {
        self.set(LiveColumn {
            attribute: change.attribute.clone(),
            column: change.column.clone(),
            kind: change.to,
        });
    }

    /// The changes `items` (each with its change's version, in write
    /// order) call for: a column for every attribute that has none and a
    /// non-null value, and a wider kind where a value does not fit and
    /// `widening` allows it. Values that fit no column the sink can make
    /// stay in the item column only.
    pub fn plan<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a Item, &'a SequenceNumber)>,
        widening: &dyn SinkKinds,
    ) -> Vec<SchemaChange> {
        let mut pending: BTreeMap<&str, SchemaChange> = BTreeMap::new();
        for (item, version) in items {
            for (attribute, value) in item {
                if self.keys.iter().any(|k| k == attribute) {
                    continue;
                }
                let current = pending
                    .get(attribute.as_str())
                    .map(|change| change.to)
                    .or_else(|| self.columns.get(attribute).map(|c| c.kind));
                let wanted = match current {
                    Some(kind) => widening.widened(kind, value),
                    None => match widening.of_value(value) {
                        Some(kind) => kind,
                        None => continue,
                    },
                };
                if Some(wanted) == current {
                    continue;
                }
                let existing = self.columns.get(attribute).map(|c| c.kind);
                if let Some(from) = existing {
                    if !widening.can_widen(from, wanted) {
                        continue;
                    }
                }
                pending
                    .entry(attribute)
                    .and_modify(|change| change.to = wanted)
                    .or_insert_with(|| SchemaChange {
                        attribute: attribute.clone(),
                        column: self.column_name(attribute),
                        from: existing,
                        to: wanted,
                        version: version.clone(),
                    });
            }
        }
        pending.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Number;

    struct Anything;
    impl SinkKinds for Anything {
        fn sink_type(&self, kind: ColumnKind) -> String {
            kind.to_string()
        }
        fn can_widen(&self, _: ColumnKind, _: ColumnKind) -> bool {
            true
        }
    }

    struct Nothing;
    impl SinkKinds for Nothing {
        fn sink_type(&self, kind: ColumnKind) -> String {
            kind.to_string()
        }
        fn can_widen(&self, _: ColumnKind, _: ColumnKind) -> bool {
            false
        }
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn n(text: &str) -> AttributeValue {
        AttributeValue::N(Number::parse(text).unwrap())
    }

    fn v(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    #[test]
    fn new_attributes_get_columns_from_their_first_change() {
        let schema = LiveSchema::new(vec!["pk".into()], &["_item"]);
        let first = item(&[
            ("pk", n("1")),
            ("qty", n("3")),
            ("note", AttributeValue::Null),
        ]);
        let second = item(&[("pk", n("2")), ("qty", n("2.5")), ("_item", n("1"))]);
        let (v1, v2) = (v("100"), v("200"));
        let changes = schema.plan([(&first, &v1), (&second, &v2)], &Anything);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].attribute, "_item");
        assert_eq!(changes[0].column, "___5Fitem");
        assert_eq!(changes[1].attribute, "qty");
        assert_eq!(changes[1].to, ColumnKind::Decimal { scale: 6 });
        assert_eq!(
            changes[1].version, v1,
            "took effect at the first change needing it"
        );
        assert_eq!(changes[1].from, None);
    }

    #[test]
    fn widenings_the_sink_cannot_make_leave_the_column_alone() {
        let mut schema = LiveSchema::new(vec!["pk".into()], &[]);
        schema.set(LiveColumn {
            attribute: "qty".into(),
            column: "qty".into(),
            kind: ColumnKind::Int,
        });
        let changed = item(&[("qty", AttributeValue::S("many".into()))]);
        let version = v("5");
        assert!(schema.plan([(&changed, &version)], &Nothing).is_empty());
        let changes = schema.plan([(&changed, &version)], &Anything);
        assert_eq!(changes[0].from, Some(ColumnKind::Int));
        assert_eq!(changes[0].to, ColumnKind::Text);
        schema.apply(&changes[0]);
        assert!(schema.plan([(&changed, &version)], &Anything).is_empty());
    }
}
