//! `mapping = "auto"`: every attribute gets an explicit typed field, added
//! with `PUT <index>/_mapping` before the first document that carries it.
//!
//! - **Names.** A key or attribute's field is `schema::naming`'s column
//!   name: plain names stay, any other (a dot, a space, a leading `_`, the
//!   sink's own `metadata_field` and `deleted_field`) is escaped with a
//!   `__` prefix, so a name is never an object path nor a metadata field.
//! - **Types.** A new field's type is inferred from the batch's values of
//!   it (see [`super::kinds`]); keys are mapped by their key type.
//! - **Type changes.** A mapped field's type never changes. A value that
//!   its field does not take goes under `<field><suffix>` (`price__s`), a
//!   field mapped for the value's kind, so no document is refused. Plain
//!   names hold no `__`, so suffixed names never meet attribute names.
//! - **Races.** Mappings only grow, so what a worker knows is true but may
//!   be incomplete: a 400 from `_mapping` (another worker mapped the field
//!   with another type) means re-read the mapping and plan again.
//! - **History.** Each field added is a [`SchemaEvent`] in `schema_index`,
//!   one document per index and field (`<index>~~<field>`, written with
//!   `_create`, so racing workers record it once), with the version of the
//!   first change that needed it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::client::EsClient;
use super::config::ElasticsearchSinkConfig;
use super::document::{index_name, push_key_part};
use super::kinds::{suffix, suffixed_kind, ElasticsearchKinds, FieldType};
use crate::metric_names as names;
use crate::model::{push_json_string, write_plain_value, Item, KeyKind};
use crate::model::{AttributeValue, SequenceNumber, TableSchema};
use crate::schema::naming::{attribute_name, column_name};
use crate::schema::{ColumnKind, LiveColumn, LiveSchema, SchemaChange, SchemaEvent, SinkKinds};
use crate::sink::registry::SinkEnv;
use crate::sink::SinkError;

/// How many times one batch re-reads the mapping after a refused addition.
const MAPPING_ATTEMPTS: usize = 4;

/// A mapping or history request that failed, naming the index.
#[derive(Debug, Clone, thiserror::Error)]
#[error("mapping of {index}: {message}")]
pub struct MappingError {
    /// The index (or the history index).
    pub index: String,
    /// What failed, with the server's answer.
    pub message: String,
    /// True when a later attempt may succeed.
    pub transient: bool,
}

impl MappingError {
    /// The sink error for it.
    pub fn into_sink_error(self, sink: &str) -> SinkError {
        let message = self.to_string();
        let sink = sink.to_owned();
        if self.transient {
            SinkError::Transient { sink, message }
        } else {
            SinkError::Fatal { sink, message }
        }
    }
}

/// One upsert of a batch, as the mapping sees it.
#[derive(Debug, Clone, Copy)]
pub struct Upsert<'a> {
    /// Source table.
    pub table: &'a Arc<str>,
    /// Its index.
    pub index: &'a str,
    /// The new image's attributes.
    pub item: &'a Item,
    /// The change's version.
    pub version: &'a SequenceNumber,
}

/// A field to add to one index.
#[derive(Debug, Clone)]
struct Addition {
    table: Arc<str>,
    change: SchemaChange,
    field: FieldType,
    /// A field for values whose type differs from the attribute's field.
    suffixed: bool,
}

/// What the sink knows of one index's mapping.
#[derive(Debug)]
struct IndexFields {
    /// Inferred fields of non-key attributes.
    schema: LiveSchema,
    /// Every top-level field of the mapping, with its type.
    fields: BTreeMap<String, FieldType>,
    /// Key attributes of the tables writing here: (attribute, field, type).
    keys: Vec<(String, String, KeyKind)>,
}

impl IndexFields {
    /// The field of `attribute` (key or not), before any suffix.
    fn name_of(&self, attribute: &str) -> String {
        match self.keys.iter().find(|(name, _, _)| name == attribute) {
            Some((_, field, _)) => field.clone(),
            None => self.schema.column_name(attribute),
        }
    }

    /// The field `value` of `attribute` goes under: its own, or a suffixed
    /// one when its own field does not take it.
    fn field_of(&self, attribute: &str, value: &AttributeValue) -> String {
        let base = self.name_of(attribute);
        match (self.fields.get(&base), ColumnKind::of_value(value)) {
            (Some(field), Some(kind)) if !field.fits(value) => format!("{base}{}", suffix(kind)),
            _ => base,
        }
    }
}

/// The auto-mapping state of one sink: every index's known fields.
#[derive(Debug)]
pub struct AutoMapping {
    sink: String,
    schema_index: String,
    indices: HashMap<String, IndexFields>,
}

impl AutoMapping {
    /// No fields known yet for the indices of `tables`; `reserved` are the
    /// sink's own field names (metadata, tombstone marker).
    pub fn new(
        sink: &str,
        config: &ElasticsearchSinkConfig,
        tables: &[TableSchema],
        reserved: &[&str],
    ) -> Self {
        let mut indices: HashMap<String, IndexFields> = HashMap::new();
        for table in tables {
            let index = index_name(&config.index, &table.name);
            let entry = indices.entry(index).or_insert_with(|| IndexFields {
                schema: LiveSchema::default(),
                fields: BTreeMap::new(),
                keys: Vec::new(),
            });
            for key in &table.keys {
                if !entry.keys.iter().any(|(name, _, _)| *name == key.name) {
                    let field = column_name(&key.name, |name| {
                        reserved.iter().any(|r| r.eq_ignore_ascii_case(name))
                    });
                    entry.keys.push((key.name.clone(), field, key.kind));
                }
            }
        }
        for fields in indices.values_mut() {
            let keys = fields
                .keys
                .iter()
                .map(|(name, _, _)| name.clone())
                .collect();
            fields.schema = LiveSchema::new(keys, reserved);
        }
        Self {
            sink: sink.to_owned(),
            schema_index: config.schema_index().to_owned(),
            indices,
        }
    }

    /// The indices the sink writes.
    pub fn indices(&self) -> impl Iterator<Item = &str> {
        self.indices.keys().map(String::as_str)
    }

    /// Reads `index`'s mapping into what the sink knows of it.
    pub async fn load(&mut self, client: &EsClient, index: &str) -> Result<(), MappingError> {
        let properties = client.mapping(index).await.map_err(|err| MappingError {
            index: index.to_owned(),
            message: format!("cannot read the mapping: {}", err.message),
            transient: true,
        })?;
        let Some(state) = self.indices.get_mut(index) else {
            return Ok(());
        };
        for (name, mapping) in properties {
            let field = FieldType::from_mapping(&mapping);
            let attribute = attribute_name(&name)
                .filter(|attribute| state.schema.column_name(attribute) == name)
                .filter(|attribute| !state.keys.iter().any(|(key, _, _)| key == attribute));
            if let Some(attribute) = attribute {
                state.schema.set(LiveColumn {
                    attribute,
                    column: name.clone(),
                    kind: kind_of_field(&field),
                });
            }
            state.fields.insert(name, field);
        }
        Ok(())
    }

    /// Maps every field `upserts` need that their indices lack, and
    /// records each in the history, before their documents are sent.
    pub async fn prepare(
        &mut self,
        client: &EsClient,
        upserts: &[Upsert<'_>],
    ) -> Result<(), MappingError> {
        let mut by_index: BTreeMap<&str, Vec<Upsert<'_>>> = BTreeMap::new();
        for upsert in upserts {
            by_index.entry(upsert.index).or_default().push(*upsert);
        }
        for (index, upserts) in by_index {
            self.prepare_index(client, index, &upserts).await?;
        }
        Ok(())
    }

    async fn prepare_index(
        &mut self,
        client: &EsClient,
        index: &str,
        upserts: &[Upsert<'_>],
    ) -> Result<(), MappingError> {
        let fail = |message: String, transient: bool| MappingError {
            index: index.to_owned(),
            message,
            transient,
        };
        let mut last = String::new();
        for _ in 0..MAPPING_ATTEMPTS {
            let additions = self.plan(index, upserts);
            if additions.is_empty() {
                return Ok(());
            }
            let properties: Map<String, Value> = additions
                .iter()
                .filter_map(|a| Some((a.change.column.clone(), a.field.mapping()?)))
                .collect();
            match client.put_mapping(index, properties).await {
                Ok(()) => {
                    self.record(client, index, &additions).await?;
                    self.apply(index, additions);
                    return Ok(());
                }
                // Another worker mapped one of the fields with another type.
                Err(err) if err.status == Some(400) => {
                    tracing::info!(sink = %self.sink, %index, reason = %err.message,
                        "a field was mapped meanwhile; reading the mapping again");
                    last = err.message;
                    self.load(client, index).await?;
                }
                Err(err) => {
                    let transient = err.transient || err.status.is_none_or(|s| s >= 500);
                    return Err(fail(
                        format!("cannot add fields: {}", err.message),
                        transient,
                    ));
                }
            }
        }
        Err(fail(
            format!("fields still refused after {MAPPING_ATTEMPTS} readings: {last}"),
            true,
        ))
    }

    /// The fields `upserts` need that `index` lacks: key fields, a field
    /// per new attribute (typed for all its values in the batch), and a
    /// suffixed field per value its attribute's field does not take.
    fn plan(&self, index: &str, upserts: &[Upsert<'_>]) -> Vec<Addition> {
        let Some(state) = self.indices.get(index) else {
            return Vec::new();
        };
        let mut out: BTreeMap<String, Addition> = BTreeMap::new();
        for upsert in upserts {
            for (attribute, field, kind) in &state.keys {
                if upsert.item.contains_key(attribute) && !state.fields.contains_key(field) {
                    out.entry(field.clone()).or_insert_with(|| Addition {
                        table: Arc::clone(upsert.table),
                        change: new_field(
                            attribute,
                            field,
                            FieldType::key_column_kind(*kind),
                            upsert,
                        ),
                        field: FieldType::of_key(*kind),
                        suffixed: false,
                    });
                }
            }
        }
        let items = upserts.iter().map(|u| (u.item, u.version));
        for change in state.schema.plan(items, &ElasticsearchKinds) {
            if state.fields.contains_key(&change.column) {
                continue;
            }
            let table = upserts
                .iter()
                .find(|u| u.version == &change.version && u.item.contains_key(&change.attribute))
                .map_or_else(|| Arc::clone(upserts[0].table), |u| Arc::clone(u.table));
            let field = FieldType::of_kind(change.to);
            out.insert(
                change.column.clone(),
                Addition {
                    table,
                    change,
                    field,
                    suffixed: false,
                },
            );
        }
        for upsert in upserts {
            self.plan_suffixes(state, upsert, &mut out);
        }
        out.into_values().collect()
    }

    /// Adds to `out` the suffixed fields `upsert`'s values need.
    fn plan_suffixes(
        &self,
        state: &IndexFields,
        upsert: &Upsert<'_>,
        out: &mut BTreeMap<String, Addition>,
    ) {
        for (attribute, value) in upsert.item {
            if state.keys.iter().any(|(key, _, _)| key == attribute) {
                continue;
            }
            let base = state.name_of(attribute);
            let field = state
                .fields
                .get(&base)
                .or_else(|| out.get(&base).map(|a| &a.field));
            let (Some(field), Some(kind)) = (field, ColumnKind::of_value(value)) else {
                continue;
            };
            if field.fits(value) {
                continue;
            }
            let name = format!("{base}{}", suffix(kind));
            if state.fields.contains_key(&name) || out.contains_key(&name) {
                continue;
            }
            let kind = suffixed_kind(kind);
            out.insert(
                name.clone(),
                Addition {
                    table: Arc::clone(upsert.table),
                    change: new_field(attribute, &name, kind, upsert),
                    field: FieldType::of_kind(kind),
                    suffixed: true,
                },
            );
        }
    }

    /// Writes one history document per addition (an existing one is kept:
    /// another worker recorded the field first) and counts the new ones.
    async fn record(
        &self,
        client: &EsClient,
        index: &str,
        additions: &[Addition],
    ) -> Result<(), MappingError> {
        let now_ms = chrono_now_ms();
        for addition in additions {
            let sink_type = ElasticsearchKinds.sink_type(addition.change.to);
            let event =
                SchemaEvent::of_change(&addition.table, &addition.change, sink_type, now_ms);
            let mut document = serde_json::to_value(&event).unwrap_or_else(|_| json!({}));
            document["index"] = Value::from(index);
            let id = history_id(index, &addition.change.column);
            let created = client
                .create_document(&self.schema_index, &id, &document)
                .await
                .map_err(|err| MappingError {
                    index: self.schema_index.clone(),
                    message: format!("cannot record the new field: {}", err.message),
                    transient: true,
                })?;
            let change = if addition.suffixed {
                "suffixed"
            } else {
                "added"
            };
            tracing::info!(sink = %self.sink, %index, field = %addition.change.column,
                attribute = %addition.change.attribute, r#type = %event.sink_type,
                version = %event.version, change, "mapped a field");
            if created {
                metrics::counter!(names::SCHEMA_CHANGES, "sink" => self.sink.clone(),
                    "table" => addition.table.to_string(), "change" => change)
                .increment(1);
            }
        }
        Ok(())
    }

    /// Takes the added fields into what the sink knows.
    fn apply(&mut self, index: &str, additions: Vec<Addition>) {
        let Some(state) = self.indices.get_mut(index) else {
            return;
        };
        for addition in additions {
            if !addition.suffixed
                && !state
                    .keys
                    .iter()
                    .any(|(k, _, _)| *k == addition.change.attribute)
            {
                state.schema.apply(&addition.change);
            }
            state.fields.insert(addition.change.column, addition.field);
        }
    }

    /// `item` as the plain JSON object `index` takes: each attribute under
    /// its field (escaped name, suffixed when its field does not take the
    /// value), numbers with every digit (the caller styles them).
    pub fn plain_document(&self, index: &str, item: &Item) -> String {
        let mut out = String::from("{");
        for (position, (attribute, value)) in item.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            let field = match self.indices.get(index) {
                Some(state) => state.field_of(attribute, value),
                None => attribute.clone(),
            };
            push_json_string(&mut out, &field);
            out.push(':');
            write_plain_value(value, &mut out);
        }
        out.push('}');
        out
    }
}

/// A new field's change record.
fn new_field(attribute: &str, field: &str, kind: ColumnKind, upsert: &Upsert<'_>) -> SchemaChange {
    SchemaChange {
        attribute: attribute.to_owned(),
        column: field.to_owned(),
        from: None,
        to: kind,
        version: upsert.version.clone(),
    }
}

/// The column kind a field found in the mapping stands for.
fn kind_of_field(field: &FieldType) -> ColumnKind {
    match field {
        FieldType::Boolean => ColumnKind::Bool,
        FieldType::Long => ColumnKind::Int,
        FieldType::Double => ColumnKind::Decimal {
            scale: crate::schema::kind::MIN_DECIMAL_SCALE,
        },
        FieldType::Keyword => ColumnKind::Text,
        FieldType::Binary => ColumnKind::Binary,
        FieldType::Stored | FieldType::Other(_) => ColumnKind::Json,
    }
}

/// The history document id of `field` in `index`: URL-safe, one per pair.
fn history_id(index: &str, field: &str) -> String {
    let mut id = String::new();
    push_key_part(&mut id, &AttributeValue::S(index.to_owned()));
    id.push_str("~~");
    push_key_part(&mut id, &AttributeValue::S(field.to_owned()));
    id
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The mapping of the history index: its fields as keywords, not parsed further.
pub fn history_index_body() -> Value {
    let keyword = json!({"type": "keyword"});
    json!({"mappings": {"dynamic": false, "properties": {
        "index": keyword, "table": keyword, "attribute": keyword,
        "column": keyword, "version": keyword, "recorded_at_ms": {"type": "long"}}}})
}

/// True when `index` is one that the `template` (`es-{table}`) names.
fn template_names(template: &str, index: &str) -> bool {
    match template.split_once("{table}") {
        Some((prefix, suffix)) => {
            index.len() > prefix.len() + suffix.len()
                && index.starts_with(prefix)
                && index.ends_with(suffix)
        }
        None => index == template,
    }
}

/// The schema history of `config`'s indices, oldest version first.
pub async fn read_history(
    config: &ElasticsearchSinkConfig,
    env: SinkEnv<'_>,
) -> Result<Vec<SchemaEvent>, SinkError> {
    let fail = |message: String| SinkError::Fatal {
        sink: env.name.to_owned(),
        message,
    };
    let client = EsClient::new(config, env.aws).await.map_err(fail)?;
    let index = config.schema_index();
    let documents = client
        .all_documents(index)
        .await
        .map_err(|err| {
            fail(format!(
                "cannot read the schema history in {index}: {}",
                err.message
            ))
        })?
        .unwrap_or_default();
    let mut events = Vec::new();
    for document in documents {
        let ours = document["index"]
            .as_str()
            .is_some_and(|name| template_names(&config.index, name));
        if !ours {
            continue;
        }
        let event = serde_json::from_value::<SchemaEvent>(document).map_err(|err| {
            fail(format!(
                "a document in {index} is not a schema event: {err}"
            ))
        })?;
        events.push(event);
    }
    events.sort_by(|a, b| {
        (a.version.len(), &a.version, &a.table, &a.column).cmp(&(
            b.version.len(),
            &b.version,
            &b.table,
            &b.column,
        ))
    });
    Ok(events)
}

#[cfg(test)]
mod tests;
