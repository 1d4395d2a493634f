//! What `dynamo-cdc schema infer` prints: per table, a comment block that
//! describes each attribute and what each typed-column sink would make of
//! it, then `[[sinks.columns]]` entries to paste under a clickhouse or s3
//! sink; or a JSON Schema (draft 2020-12) of the items' plain JSON form.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use crate::config::PipelineConfig;
use crate::model::KeyAttribute;
use crate::schema::naming::column_name;
use crate::schema::stats::{SampleStats, Shape};
use crate::schema::{AttributeStats, ColumnKind, SinkKinds};
use crate::sink::clickhouse::ClickHouseKinds;
#[cfg(feature = "elasticsearch")]
use crate::sink::elasticsearch::ElasticsearchKinds;
#[cfg(feature = "postgres")]
use crate::sink::postgres::PostgresKinds;
#[cfg(feature = "s3")]
use crate::sink::s3::ParquetKinds;

/// One table's sample and how it was taken.
#[derive(Debug)]
pub(super) struct TableSample {
    /// The table.
    pub table: String,
    /// Its key attributes (they have columns of their own).
    pub keys: Vec<KeyAttribute>,
    /// Statistics of every item and image read.
    pub stats: SampleStats,
    /// Items the Scan returned.
    pub scanned: u64,
    /// Stream images read (new and old).
    pub stream_images: u64,
    /// Items or records that did not decode (left out).
    pub undecodable: u64,
    /// How the stream was sampled, or why it was not.
    pub stream_note: String,
}

/// The sinks with typed columns, by their `type`, with how each types a
/// column kind (ClickHouse as on a server without `Bool`, the safe guess).
/// One more line adds another; a sink this build lacks is left out.
fn sink_kinds() -> Vec<(&'static str, &'static dyn SinkKinds)> {
    vec![
        #[cfg(feature = "clickhouse")]
        ("clickhouse", &ClickHouseKinds { bool_type: false }),
        #[cfg(feature = "postgres")]
        ("postgres", &PostgresKinds),
        #[cfg(feature = "s3")]
        ("s3", &ParquetKinds),
        #[cfg(feature = "elasticsearch")]
        ("elasticsearch", &ElasticsearchKinds),
    ]
}

/// The types of pasted `[[sinks.columns]]` (ClickHouse type names, which
/// the clickhouse and s3 sinks both read).
const PASTED: ClickHouseKinds = ClickHouseKinds { bool_type: false };

/// One sink that would type a table's columns: its label and kinds.
struct SinkView {
    label: String,
    kinds: &'static dyn SinkKinds,
}

/// The typed-column sinks configured for `table`, or one of each type
/// when none is.
fn sink_views(pipeline: &PipelineConfig, table: &str) -> (Vec<SinkView>, bool) {
    let mut views = Vec::new();
    for entry in &pipeline.sinks {
        let routed = entry
            .tables
            .as_ref()
            .is_none_or(|tables| tables.iter().any(|t| t == table));
        let kind = entry.sink.kind();
        if let Some((_, kinds)) = sink_kinds().into_iter().find(|(k, _)| *k == kind) {
            if routed {
                views.push(SinkView {
                    label: format!("{kind} {}", quote(&entry.name())),
                    kinds,
                });
            }
        }
    }
    if !views.is_empty() {
        return (views, true);
    }
    let all = sink_kinds()
        .into_iter()
        .map(|(kind, kinds)| SinkView {
            label: kind.to_owned(),
            kinds,
        })
        .collect();
    (all, false)
}

/// The TOML report of every sampled table.
pub(super) fn toml_report(pipeline: &PipelineConfig, samples: &[TableSample]) -> String {
    let mut out = String::new();
    for sample in samples {
        let (views, configured) = sink_views(pipeline, &sample.table);
        describe_table(&mut out, sample, &views, configured);
        propose_columns(&mut out, sample);
        out.push('\n');
    }
    out
}

fn describe_table(out: &mut String, sample: &TableSample, views: &[SinkView], configured: bool) {
    let stats = &sample.stats;
    let _ = writeln!(out, "# ==== table {} ====", quote(&sample.table));
    let _ = writeln!(
        out,
        "# sampled {} item(s): {} by parallel Scan, {} stream image(s){}",
        stats.items,
        sample.scanned,
        sample.stream_images,
        if sample.undecodable > 0 {
            format!("; {} undecodable left out", sample.undecodable)
        } else {
            String::new()
        }
    );
    let _ = writeln!(out, "# {}", one_line(&sample.stream_note));
    let keys: Vec<String> = sample
        .keys
        .iter()
        .map(|k| format!("{} ({:?})", quote(&k.name), k.kind))
        .collect();
    let _ = writeln!(
        out,
        "# keys: {} (columns of their own; not proposed)",
        keys.join(", ")
    );
    if !configured {
        let _ = writeln!(
            out,
            "# no clickhouse, postgres or s3 sink is configured for this table: types shown for each"
        );
    }
    let conflicts: Vec<String> = attributes(sample)
        .filter(|(_, a)| a.conflict())
        .map(|(name, _)| quote(name))
        .collect();
    let _ = writeln!(
        out,
        "# conflicts: {}",
        if conflicts.is_empty() {
            "none".to_owned()
        } else {
            conflicts.join(", ")
        }
    );
    for (name, attribute) in attributes(sample) {
        out.push_str("#\n");
        describe_attribute(out, sample, name, attribute, views);
    }
    out.push_str("#\n");
}

/// The table's attributes other than its keys.
fn attributes(sample: &TableSample) -> impl Iterator<Item = (&String, &AttributeStats)> {
    sample
        .stats
        .attributes
        .iter()
        .filter(|(name, _)| !sample.keys.iter().any(|k| &k.name == *name))
}

fn describe_attribute(
    out: &mut String,
    sample: &TableSample,
    name: &str,
    attribute: &AttributeStats,
    views: &[SinkView],
) {
    let stats = &sample.stats;
    let _ = writeln!(
        out,
        "# attribute {}: {}; present in {:.1}% ({}/{})",
        quote(name),
        type_counts(&attribute.shape),
        stats.presence(name) * 100.0,
        attribute.present,
        stats.items
    );
    if let Some(range) = &attribute.numbers {
        let _ = writeln!(
            out,
            "#   numbers {} .. {}; precision {}, scale {} ({} integer digit(s))",
            range.min.as_str(),
            range.max.as_str(),
            range.precision(),
            range.max_scale,
            range.max_integer_digits
        );
    }
    if let Some(r) = attribute.text_lengths {
        let _ = writeln!(out, "#   text length {} .. {} characters", r.min, r.max);
    }
    if let Some(r) = attribute.binary_lengths {
        let _ = writeln!(out, "#   binary length {} .. {} bytes", r.min, r.max);
    }
    if !attribute.shape.fields.is_empty() || attribute.shape.elements.is_some() {
        let _ = writeln!(out, "#   shape {}", shape_text(&attribute.shape));
    }
    let Some(kind) = attribute.kind else {
        let _ = writeln!(out, "#   only NULL seen: no column type to propose");
        return;
    };
    if attribute.conflict() {
        let _ = writeln!(
            out,
            "#   CONFLICT: values call for {}; one column holds them all as {kind}",
            own_kinds(attribute).join(", ")
        );
    } else {
        let _ = writeln!(out, "#   kind {kind}");
    }
    for view in views {
        let _ = writeln!(
            out,
            "#   {}: {}",
            view.label,
            sink_verdict(view.kinds, attribute, kind)
        );
    }
}

/// The value kinds of an attribute, narrowest first.
fn own_kinds(attribute: &AttributeStats) -> Vec<String> {
    let mut kinds: Vec<ColumnKind> = attribute.value_kinds.iter().copied().collect();
    kinds.sort_by_key(|k| (rank(*k), k.to_string()));
    kinds.iter().map(ToString::to_string).collect()
}

fn rank(kind: ColumnKind) -> u8 {
    match kind {
        ColumnKind::Bool => 0,
        ColumnKind::Int => 1,
        ColumnKind::Decimal { .. } => 2,
        ColumnKind::Text => 3,
        ColumnKind::Binary => 4,
        ColumnKind::TextArray => 5,
        ColumnKind::Json => 6,
    }
}

/// What a sink would make of the attribute: its column type and, for
/// values of narrower kinds that an earlier column was made for, whether
/// that column widens in place or keeps its type (the values that do not
/// fit then stay in the item column only).
fn sink_verdict(kinds: &dyn SinkKinds, attribute: &AttributeStats, kind: ColumnKind) -> String {
    let mut text = kinds.sink_type(kind);
    if kind == ColumnKind::Json && !text.to_ascii_lowercase().contains("json") {
        text.push_str(" (plain JSON text)");
    }
    let mut seen = vec![kinds.sink_type(kind)];
    let mut earlier: Vec<ColumnKind> = attribute
        .value_kinds
        .iter()
        .copied()
        .filter(|k| *k != kind)
        .collect();
    earlier.sort_by_key(|k| (rank(*k), k.to_string()));
    for from in earlier {
        let from_type = kinds.sink_type(from);
        if seen.contains(&from_type) {
            continue;
        }
        seen.push(from_type.clone());
        if kinds.can_widen(from, kind) {
            let _ = write!(text, "; a column made as {from_type} widens in place");
        } else {
            let _ = write!(
                text,
                "; a column made as {from_type} keeps its type, and values that do not fit stay in the item column only"
            );
        }
    }
    text
}

/// `S 3, N 2, NULL 1`, most frequent first.
fn type_counts(shape: &Shape) -> String {
    let mut counts: Vec<(&str, u64)> = shape.types.iter().map(|(t, n)| (*t, *n)).collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(tag, n)| format!("{tag} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A nested shape on one line: `{name: S 2; tags: L [N 1]}`.
fn shape_text(shape: &Shape) -> String {
    let mut text = String::new();
    if !shape.fields.is_empty() || shape.fields_dropped > 0 {
        let fields: Vec<String> = shape
            .fields
            .iter()
            .map(|(name, child)| {
                let nested = shape_text(child);
                let sep = if nested.is_empty() { "" } else { " " };
                format!("{}: {}{sep}{nested}", quote(name), type_counts(child))
            })
            .collect();
        let dropped = if shape.fields_dropped > 0 {
            format!("; {} more", shape.fields_dropped)
        } else {
            String::new()
        };
        let _ = write!(text, "{{{}{dropped}}}", fields.join("; "));
    }
    if let Some(elements) = &shape.elements {
        let nested = shape_text(elements);
        let sep = if nested.is_empty() { "" } else { " " };
        let _ = write!(text, "[{}{sep}{nested}]", type_counts(elements));
    }
    if shape.truncated {
        text.push_str(" (deeper levels not followed)");
    }
    text
}

/// The `[[sinks.columns]]` entries of one table.
fn propose_columns(out: &mut String, sample: &TableSample) {
    let _ = writeln!(
        out,
        "# Columns for a clickhouse or s3 sink (paste under its [[sinks]] entry):"
    );
    for (name, attribute) in attributes(sample) {
        let Some(kind) = attribute.kind else { continue };
        if kind == ColumnKind::Json {
            out.push('\n');
            let _ = writeln!(
                out,
                "# {}: not proposed: maps, lists or mixed values (json) fit no mapped column type; they stay in the item column (columns = \"auto\" gives them a JSON column)",
                quote(name)
            );
            continue;
        }
        out.push('\n');
        if kind == ColumnKind::Binary {
            let _ = writeln!(out, "# binary: base64 text in a String column");
        }
        let _ = writeln!(out, "[[sinks.columns]]");
        let _ = writeln!(out, "name = {}", quote(&mapped_name(name)));
        let _ = writeln!(out, "attribute = {}", quote(name));
        let _ = writeln!(out, "type = {}", quote(&PASTED.sink_type(kind)));
        let _ = writeln!(out, "table = {}", quote(&sample.table));
    }
}

/// The column name of an attribute (see [`crate::schema::naming`]); an
/// escaped name gets a `c` before it, since mapped column names may not
/// start with `_` (the sinks' own columns do).
fn mapped_name(attribute: &str) -> String {
    let name = column_name(attribute, |_| false);
    if name.starts_with('_') {
        format!("c{name}")
    } else {
        name
    }
}

/// `text` as a TOML basic string (also safe inside a comment: one line).
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with line breaks replaced, for a comment.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The JSON Schema (draft 2020-12) of a table's items in their plain JSON
/// form (numbers as numbers, binary as base64 strings, sets as arrays).
pub(super) fn json_schema(sample: &TableSample) -> Value {
    let stats = &sample.stats;
    let properties: Map<String, Value> = stats
        .attributes
        .iter()
        .map(|(name, attribute)| (name.clone(), value_schema(&attribute.shape)))
        .collect();
    let required: Vec<&String> = stats
        .attributes
        .iter()
        .filter(|(_, a)| stats.items > 0 && a.present == stats.items)
        .map(|(name, _)| name)
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": sample.table,
        "description": format!("{} sampled item(s) of DynamoDB table {}, as plain JSON", stats.items, sample.table),
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// The schema of the values seen at one place.
fn value_schema(shape: &Shape) -> Value {
    let types: BTreeSet<&str> = shape.types.keys().map(|tag| json_type(tag)).collect();
    let mut schema = Map::new();
    schema.insert("description".into(), type_counts(shape).into());
    schema.insert("type".into(), one_or_many(&types));
    if shape.types.contains_key("M") && !shape.fields.is_empty() {
        let maps = shape.types["M"];
        let properties: Map<String, Value> = shape
            .fields
            .iter()
            .map(|(name, child)| (name.clone(), value_schema(child)))
            .collect();
        let required: Vec<&String> = shape
            .fields
            .iter()
            .filter(|(_, child)| child.total() == maps)
            .map(|(name, _)| name)
            .collect();
        schema.insert("properties".into(), properties.into());
        schema.insert("required".into(), json!(required));
    }
    if let Some(items) = element_schema(shape) {
        schema.insert("items".into(), items);
    }
    schema.into()
}

/// The schema of array elements, when every array seen was of one sort
/// (lists, or sets of strings, numbers or binaries).
fn element_schema(shape: &Shape) -> Option<Value> {
    let arrays: Vec<&str> = shape
        .types
        .keys()
        .copied()
        .filter(|tag| matches!(*tag, "L" | "SS" | "NS" | "BS"))
        .collect();
    match arrays.as_slice() {
        ["L"] => shape.elements.as_deref().map(value_schema),
        sets if !sets.is_empty() && !sets.contains(&"L") => {
            let types: BTreeSet<&str> = sets
                .iter()
                .map(|tag| if *tag == "NS" { "number" } else { "string" })
                .collect();
            Some(json!({ "type": one_or_many(&types) }))
        }
        _ => None,
    }
}

fn one_or_many(types: &BTreeSet<&str>) -> Value {
    match types.iter().next() {
        Some(only) if types.len() == 1 => json!(only),
        _ => json!(types),
    }
}

/// The JSON type of a DynamoDB type's plain JSON form.
fn json_type(tag: &str) -> &'static str {
    match tag {
        "N" => "number",
        "BOOL" => "boolean",
        "NULL" => "null",
        "M" => "object",
        "L" | "SS" | "NS" | "BS" => "array",
        _ => "string",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttributeValue, Item, Number};
    use crate::schema::SampleStats;

    fn sample(items: &[Item]) -> TableSample {
        let mut stats = SampleStats::default();
        items.iter().for_each(|item| stats.observe(item));
        TableSample {
            table: "t".into(),
            keys: Vec::new(),
            stats,
            scanned: items.len() as u64,
            stream_images: 0,
            undecodable: 0,
            stream_note: "no stream".into(),
        }
    }

    fn item(pairs: Vec<(&str, AttributeValue)>) -> Item {
        pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    #[test]
    fn names_are_quoted_on_one_line_and_mapped_names_never_start_with_underscore() {
        assert_eq!(quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000Ad\"");
        assert_eq!(mapped_name("price"), "price");
        assert_eq!(mapped_name("_v"), "c___5Fv");
        assert_eq!(mapped_name("first name"), "c__first_20name");
    }

    #[test]
    fn verdicts_say_which_sinks_widen_in_place() {
        let mut stats = AttributeStats::default();
        stats.observe(&AttributeValue::Bool(true));
        stats.observe(&AttributeValue::N(Number::parse("1").unwrap()));
        let kind = stats.kind.unwrap();
        let clickhouse = sink_verdict(&ClickHouseKinds { bool_type: false }, &stats, kind);
        assert_eq!(
            clickhouse,
            "Nullable(String); a column made as Nullable(UInt8) keeps its type, and values that \
             do not fit stay in the item column only; a column made as Nullable(Int64) widens in place"
        );
        let postgres = sink_verdict(&PostgresKinds, &stats, kind);
        assert!(postgres.starts_with("text; a column made as boolean widens in place"));
    }

    #[test]
    fn json_schema_requires_what_is_always_present() {
        let map = |pairs| AttributeValue::M(item(pairs));
        let s = |text: &str| AttributeValue::S(text.into());
        let sample = sample(&[
            item(vec![("a", s("x")), ("m", map(vec![("k", s("v"))]))]),
            item(vec![
                ("a", AttributeValue::Null),
                ("m", map(vec![("k", s("w")), ("o", s("z"))])),
                ("set", AttributeValue::Ns(vec![Number::parse("1").unwrap()])),
            ]),
        ]);
        let schema = json_schema(&sample);
        assert_eq!(schema["required"], json!(["a", "m"]));
        assert_eq!(schema["properties"]["a"]["type"], json!(["null", "string"]));
        assert_eq!(schema["properties"]["m"]["required"], json!(["k"]));
        assert_eq!(
            schema["properties"]["set"]["items"],
            json!({"type": "number"})
        );
    }
}
