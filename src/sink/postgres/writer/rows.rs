//! The rows of one batch for the PostgreSQL sink: per table and key the
//! newest change's parameters (keys, items, version, tombstone flag, then
//! the typed columns), the refused changes, and what the typed values found.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use base64::Engine as _;

use super::{Latest, PostgresSink, Row};
use crate::model::{AttributeValue, ChangeEvent, Image};
use crate::sink::postgres::typed::{self, params_from_text, Findings};
use crate::sink::postgres::{PgTable, SqlDialect};
use crate::sink::{Batch, Rejected};

/// A batch's rows, ready to write.
pub(super) struct BuiltRows<'a> {
    /// Per table, the newest change per key.
    pub(super) latest: HashMap<Arc<str>, Latest<'a>>,
    /// Changes that cannot become rows.
    pub(super) rejected: Vec<Rejected>,
    /// Per table, values left out of typed columns that cannot hold them.
    pub(super) untyped: HashMap<Arc<str>, u64>,
    /// Tables with a value that needs a new or wider typed column.
    pub(super) unplanned: HashSet<Arc<str>>,
}

impl PostgresSink {
    /// The rows of `batch`, changes already committed (a replay) left out.
    pub(super) fn build_rows<'a>(&self, batch: &'a Batch) -> BuiltRows<'a> {
        let mut built = BuiltRows {
            latest: HashMap::new(),
            rejected: Vec::new(),
            untyped: HashMap::new(),
            unplanned: HashSet::new(),
        };
        for ((chunk, index), event) in batch.events() {
            // Already committed with an earlier batch (a replay after a crash):
            // skip. Snapshot pages carry no shard checkpoint, so never match.
            if let Some(done) = self.checkpoints.get(batch.chunks[chunk].ack.shard()) {
                if event.position.sequence <= *done {
                    continue;
                }
            }
            let Some(table) = self.tables.get(&event.table) else {
                built.rejected.push(Rejected {
                    chunk,
                    event: index,
                    reason: format!("no target table for {}", event.table),
                });
                continue;
            };
            match row(table, event, self.dialect, self.auto.is_some()) {
                Ok((params, findings)) => {
                    if findings.untyped > 0 {
                        *built.untyped.entry(Arc::clone(&event.table)).or_default() +=
                            u64::from(findings.untyped);
                    }
                    if findings.unplanned {
                        built.unplanned.insert(Arc::clone(&event.table));
                    }
                    let rows = built
                        .latest
                        .entry(Arc::clone(&event.table))
                        .or_insert_with(|| Latest::with_capacity(batch.len()));
                    let key = &params[..table.keys.len()];
                    match rows.get_mut(key) {
                        Some(held) if event.version() > held.2.version() => {
                            *held = ((chunk, index), params, event);
                        }
                        Some(_) => {}
                        None => {
                            rows.insert(key.to_vec(), ((chunk, index), params, event));
                        }
                    }
                }
                Err(reason) => built.rejected.push(Rejected {
                    chunk,
                    event: index,
                    reason,
                }),
            }
        }
        built
    }
}

/// The parameters of `event`'s row, and what its typed values found
/// (with `inferred`, the sink's `columns = "auto"`).
fn row<'a>(
    table: &PgTable,
    event: &'a ChangeEvent,
    dialect: SqlDialect,
    inferred: bool,
) -> Result<(Row<'a>, Findings), String> {
    let mut params = Vec::with_capacity(table.keys.len() + 4 + table.columns.len());
    for (name, _) in &table.keys {
        let value = event
            .keys
            .get(name)
            .ok_or_else(|| format!("key attribute {name:?} is missing"))?;
        params.push(Some(match value {
            AttributeValue::S(s) => Cow::Borrowed(s.as_str()),
            AttributeValue::N(n) => Cow::Borrowed(n.as_str()),
            AttributeValue::B(b) => Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)),
            other => return Err(format!("key attribute {name:?} is {}", other.type_tag())),
        }));
    }
    let image = if event.op.is_upsert() {
        Some(event.new_image.as_ref().ok_or_else(|| {
            "the change has no new image: the stream view must be NEW_IMAGE or NEW_AND_OLD_IMAGES".to_owned()
        })?)
    } else {
        None
    };
    let plain = image
        .map(|image| {
            image
                .plain_json()
                .map_err(|e| format!("image does not decode: {e}"))
        })
        .transpose()?;
    params.push(plain.map(Cow::Owned));
    params.push(image.map(Image::json_text));
    params.push(Some(match dialect {
        SqlDialect::Postgres => Cow::Borrowed(event.version().digits()),
        // CrateDB stores versions as padded text: text order is numeric order.
        SqlDialect::Cratedb => Cow::Owned(event.version().to_padded()),
    }));
    let deleted = if event.op.is_upsert() {
        "false"
    } else {
        "true"
    };
    params.push(Some(Cow::Borrowed(deleted)));
    if !inferred {
        return Ok((params, Findings::default()));
    }
    let from_text = image.and_then(|image| {
        params_from_text(&table.columns, &table.keys, &image.json_text(), &mut params)
    });
    let findings = match from_text {
        Some(findings) => findings,
        None => {
            let item = image
                .map(|image| {
                    image
                        .item()
                        .map_err(|e| format!("image does not decode: {e}"))
                })
                .transpose()?;
            typed::params(&table.columns, &table.keys, item, &mut params)
        }
    };
    Ok((params, findings))
}
