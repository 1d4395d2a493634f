//! Builds of small dimension files in every format and mode: the rows
//! that come back, the choice `auto` makes, reuse, and the errors bad
//! files get.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use super::*;

fn source(path: &Path) -> SourceId {
    SourceId::local(&path.display().to_string()).unwrap()
}

fn spec(key: &[&str], columns: &[&str]) -> RowSpec {
    RowSpec {
        key: key.iter().map(|k| (*k).to_owned()).collect(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
    }
}

fn build_file(
    path: &Path,
    spec: &RowSpec,
    mode: DimensionMode,
    budget: usize,
) -> Result<LoadedIndex, DimensionError> {
    let index_dir = path.with_extension("indexes");
    build(&BuildRequest {
        name: "test",
        source: &SourceId::local(&path.display().to_string())?,
        file: path,
        format: DimensionFormat::from_path(&path.display().to_string()).unwrap(),
        spec,
        mode,
        memory_budget: budget,
        index_dir: &index_dir,
    })
}

/// The values of the row keyed by `parts`, as text.
fn row(index: &LoadedIndex, parts: &[&str]) -> Option<Vec<String>> {
    let mut key = KeyBuilder::new(parts.len());
    parts.iter().for_each(|p| key.push(p));
    let mut cells = Vec::new();
    let reader = index.reader().unwrap();
    let found = reader
        .lookup(key.bytes(), &mut |_, cell| cells.push(format!("{cell:?}")))
        .unwrap();
    found.then_some(cells)
}

const CSV: &str = "\u{feff}region,id,name,note\neu,1,Ada,\"line one\nline two\"\nus,1,Bob,\"say \"\"hi\"\"\"\neu,2,Cy,\n";

#[test]
fn csv_with_bom_quotes_and_newlines_in_both_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.csv");
    std::fs::write(&path, CSV).unwrap();
    let spec = spec(&["region", "id"], &["name", "note"]);
    for mode in [DimensionMode::Memory, DimensionMode::Disk] {
        let index = build_file(&path, &spec, mode, usize::MAX).unwrap();
        assert_eq!(index.mode(), mode.name());
        assert_eq!(index.rows(), 3);
        assert_eq!(
            row(&index, &["eu", "1"]).unwrap(),
            ["S(\"Ada\")", "S(\"line one\\nline two\")"]
        );
        assert_eq!(
            row(&index, &["us", "1"]).unwrap()[1],
            "S(\"say \\\"hi\\\"\")"
        );
        assert!(row(&index, &["eu", "3"]).is_none());
        assert!(row(&index, &["eu1", ""]).is_none());
    }
}

#[test]
fn auto_indexes_on_disk_past_the_budget_and_reuses_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    let lines: String = (0..5_000)
        .map(|n| {
            format!(
                "{{\"id\": {n}, \"score\": {n}.25, \"vip\": {}}}\n",
                n % 2 == 0
            )
        })
        .collect();
    std::fs::write(&path, lines).unwrap();
    let spec = spec(&["id"], &["score", "vip"]);
    let small = build_file(&path, &spec, DimensionMode::Auto, 1 << 20).unwrap();
    assert_eq!(small.mode(), "memory");
    let large = build_file(&path, &spec, DimensionMode::Auto, 16 << 10).unwrap();
    assert_eq!(large.mode(), "disk");
    assert_eq!(large.rows(), 5_000);
    assert_eq!(
        row(&large, &["4242"]).unwrap(),
        ["N(\"4242.25\")", "Bool(true)"]
    );
    // An environment opens once per process: the pipeline reuses an index
    // at start, before any is open.
    drop(large);
    let index_dir = path.with_extension("indexes");
    let reused = reuse(&index_dir, &source(&path), &spec).unwrap();
    assert_eq!(reused.rows(), 5_000);
    assert!(reuse(
        &index_dir,
        &source(&path),
        &RowSpec {
            columns: vec!["vip".into()],
            ..spec.clone()
        }
    )
    .is_none());
    std::fs::write(&path, "{\"id\": 1, \"score\": 2}\n").unwrap();
    assert!(
        reuse(&index_dir, &source(&path), &spec).is_none(),
        "a changed file is not reused"
    );
}

#[test]
fn parquet_rows_keep_types_and_a_null_key_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dim.parquet");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("wide", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
            Arc::new(StringArray::from(vec!["x", "y", "z"])),
        ],
    )
    .unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None)
            .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    for mode in [DimensionMode::Memory, DimensionMode::Disk] {
        let index = build_file(&path, &spec(&["id"], &["n"]), mode, usize::MAX).unwrap();
        assert_eq!(index.rows(), 2);
        assert_eq!(row(&index, &["a"]).unwrap(), ["N(\"1\")"]);
        assert_eq!(row(&index, &["c"]).unwrap(), ["Null"]);
    }
    let err = build_file(&path, &spec(&["id"], &["missing"]), DimensionMode::Disk, 0).unwrap_err();
    assert!(
        err.to_string().contains("no column \"missing\"")
            && err.to_string().contains("id, n, wide"),
        "{err}"
    );
}

#[test]
fn bad_files_are_refused_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let id_name = spec(&["id"], &["name"]);
    let duplicate = write("dup.csv", "id,name\n1,a\n2,b\n1,c\n");
    let err = build_file(&duplicate, &id_name, DimensionMode::Memory, usize::MAX).unwrap_err();
    assert!(
        err.to_string()
            .contains("dup.csv line 4: duplicate key \"1\""),
        "{err}"
    );
    let err = build_file(&duplicate, &id_name, DimensionMode::Disk, 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("line 2 and line 4: duplicate key \"1\""),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(duplicate.with_extension("indexes"))
            .unwrap()
            .count(),
        0,
        "a failed build leaves nothing"
    );
    let truncated = write("cut.csv", "id,name\n1,a\n2,\"b\n");
    let err = build_file(&truncated, &id_name, DimensionMode::Disk, 0).unwrap_err();
    assert!(err.to_string().contains("cut.csv line 3"), "{err}");
    let cut_json = write(
        "cut.jsonl",
        "{\"id\": 1, \"name\": \"a\"}\n{\"id\": 2, \"na",
    );
    let err = build_file(&cut_json, &id_name, DimensionMode::Memory, usize::MAX).unwrap_err();
    assert!(err.to_string().contains("cut.jsonl line 2"), "{err}");
    let no_key = write("nokey.csv", "ident,name\n1,a\n");
    let err = build_file(&no_key, &id_name, DimensionMode::Auto, 1 << 20).unwrap_err();
    assert!(
        err.to_string()
            .contains("no column \"id\" (it has: ident, name)"),
        "{err}"
    );
    let err = build_file(
        &dir.path().join("missing.csv"),
        &id_name,
        DimensionMode::Auto,
        1 << 20,
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing.csv"), "{err}");
    let not_parquet = write("junk.parquet", "not parquet at all");
    let err = build_file(&not_parquet, &id_name, DimensionMode::Disk, 0).unwrap_err();
    assert!(
        err.to_string()
            .contains("junk.parquet: not a readable Parquet file"),
        "{err}"
    );
}
