//! Every TOML example in the book (docs/src/**/*.md) and the README is a
//! configuration the engine accepts, and one its JSON Schema accepts.
//!
//! A ```` ```toml ```` block is a complete pipeline configuration unless an
//! HTML comment on the line before it says otherwise:
//!
//! - `<!-- toml: fragment -->`: a part of a pipeline (a `[[sinks]]` entry,
//!   a `[coordinator]` section, tables with their filters): it is checked
//!   inside a complete pipeline, whose `tables` and `sinks` it replaces
//!   when it has its own;
//! - `<!-- toml: loader -->`: a complete loader configuration.
//!
//! The schema must also refuse what the parser refuses: a misspelt key.

use std::path::{Path, PathBuf};

use dynamo_cdc::config::{json_schema, parse_loader_str, parse_str, ConfigKind};

/// What a block is, from the marker comment before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Pipeline,
    Fragment,
    Loader,
}

/// One TOML example: where it is, what it is, its text.
struct Example {
    place: String,
    kind: Block,
    text: String,
}

/// The pipeline a fragment is checked inside.
const BASE: &str = r#"
state_dir = "/var/lib/dynamo-cdc"

[[tables]]
name = "orders"

[[sinks]]
type = "sqlite"
path = "/var/lib/dynamo-cdc/replica.db"
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            out.push(path);
        }
    }
}

/// The ```` ```toml ```` blocks of one Markdown file.
fn toml_blocks(path: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let relative = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let fence = lines[index].trim_start();
        if !fence.starts_with("```") {
            index += 1;
            continue;
        }
        let start = index;
        let is_toml = fence.trim_start_matches('`').trim() == "toml";
        index += 1;
        let mut body = Vec::new();
        while index < lines.len() && !lines[index].trim_start().starts_with("```") {
            body.push(lines[index]);
            index += 1;
        }
        index += 1;
        if !is_toml {
            continue;
        }
        let marker = start.checked_sub(1).map_or("", |i| lines[i].trim());
        let kind = match marker {
            "<!-- toml: fragment -->" => Block::Fragment,
            "<!-- toml: loader -->" => Block::Loader,
            other if other.starts_with("<!-- toml:") => {
                panic!("{relative}:{}: unknown marker {other}", start)
            }
            _ => Block::Pipeline,
        };
        blocks.push(Example {
            place: format!("{relative}:{}", start + 1),
            kind,
            text: expand_includes(path, &body),
        });
    }
    blocks
}

/// A block's lines with each mdBook `{{#include FILE}}` line replaced by
/// the file (relative to the page), as the book shows it.
fn expand_includes(page: &Path, lines: &[&str]) -> String {
    let dir = page.parent().unwrap_or(Path::new("."));
    lines
        .iter()
        .map(|line| {
            match line
                .trim()
                .strip_prefix("{{#include ")
                .and_then(|rest| rest.strip_suffix("}}"))
            {
                Some(file) => std::fs::read_to_string(dir.join(file.trim()))
                    .unwrap_or_else(|e| panic!("{}: {{{{#include {file}}}}}: {e}", page.display())),
                None => (*line).to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn examples() -> Vec<Example> {
    let mut files = vec![repo().join("README.md")];
    markdown_files(&repo().join("docs/src"), &mut files);
    files.iter().flat_map(|file| toml_blocks(file)).collect()
}

/// The complete document an example stands for: itself, or a fragment
/// inside [`BASE`].
fn complete(example: &Example) -> toml::Table {
    let mut table: toml::Table = toml::from_str(&example.text)
        .unwrap_or_else(|e| panic!("{}: not TOML: {e}", example.place));
    if example.kind == Block::Fragment {
        let mut base: toml::Table = toml::from_str(BASE).expect("base pipeline");
        base.extend(std::mem::take(&mut table));
        table = base;
    }
    table
}

/// `${NAME}` references in examples resolve to a placeholder of their kind.
fn any_variable(name: &str) -> Option<String> {
    let value = match name {
        "POSTGRES_URL" => "host=db user=cdc",
        _ => "example",
    };
    Some(value.to_owned())
}

fn validator(kind: ConfigKind) -> jsonschema::Validator {
    jsonschema::validator_for(&json_schema(kind)).expect("the schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, document: &toml::Table) -> Vec<String> {
    let instance = serde_json::to_value(document).expect("TOML as JSON");
    validator
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect()
}

#[test]
fn every_toml_example_in_the_book_passes_validation() {
    let examples = examples();
    assert!(
        examples.len() >= 20,
        "found only {} TOML examples",
        examples.len()
    );
    let mut failures = Vec::new();
    for example in &examples {
        let text = toml::to_string(&complete(example)).expect("TOML text");
        let file = Path::new(&example.place);
        let result = match example.kind {
            Block::Loader => parse_loader_str(&text, file, any_variable).map(|_| ()),
            Block::Pipeline | Block::Fragment => parse_str(&text, file, any_variable).map(|_| ()),
        };
        if let Err(err) = result {
            failures.push(format!("{} ({:?}): {err}", example.place, example.kind));
        }
    }
    assert!(
        failures.is_empty(),
        "examples the engine refuses:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_json_schema_accepts_every_example_in_the_book() {
    let pipeline = validator(ConfigKind::Pipeline);
    let loader = validator(ConfigKind::Loader);
    let mut failures = Vec::new();
    for example in examples() {
        let schema = if example.kind == Block::Loader {
            &loader
        } else {
            &pipeline
        };
        let errors = schema_errors(schema, &complete(&example));
        if !errors.is_empty() {
            failures.push(format!("{}: {}", example.place, errors.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "examples the schema refuses:\n{}",
        failures.join("\n")
    );
}

/// A misspelt key in each kind of table: the top level, a section, a
/// table entry, a sink (a flattened, tagged entry), a transform, a
/// sink's batch, and the loader's queue. The parser and the schema both refuse it.
#[test]
fn a_misspelt_key_is_refused_by_the_parser_and_the_schema() {
    let pipeline = validator(ConfigKind::Pipeline);
    let misspelt = [
        ("stat_dir = \"/x\"\n", "stat_dir"),
        ("[source]\nbatch_sise = 10\n", "batch_sise"),
        ("[coordinator]\nlease_tabel = \"x\"\n", "lease_tabel"),
        ("[[tables]]\nname = \"orders\"\nstart_positon = \"latest\"\n", "start_positon"),
        ("[[sinks]]\ntype = \"clickhouse\"\nurll = \"http://ch:8123\"\n", "urll"),
        ("[[sinks]]\ntype = \"sqlite\"\npath = \"r.db\"\ntabels = [\"orders\"]\n", "tabels"),
        ("[[sinks]]\ntype = \"sqlite\"\npath = \"r.db\"\n[sinks.batch]\nmax_record = 5\n", "max_record"),
        (
            "[[tables]]\nname = \"orders\"\ntransforms = [{ type = \"rename\", from = \"a\", too = \"b\" }]\n",
            "too",
        ),
    ];
    for (fragment, key) in misspelt {
        let example = Example {
            place: format!("misspelt {key}"),
            kind: Block::Fragment,
            text: fragment.to_owned(),
        };
        let mut document = complete(&example);
        if key == "stat_dir" {
            document.remove("state_dir");
        }
        let text = toml::to_string(&document).expect("TOML text");
        let refused = parse_str(&text, Path::new("pipeline.toml"), any_variable)
            .expect_err(&format!("the parser accepts {key}"));
        assert!(refused.to_string().contains(key), "{key}: {refused}");
        assert!(
            !schema_errors(&pipeline, &document).is_empty(),
            "the schema accepts the misspelt key {key}"
        );
    }
    let loader = validator(ConfigKind::Loader);
    let text = "state_dir = \"/x\"\n[queue]\nurl = \"http://q\"\nwait_tme = \"1s\"\n\
                [[tables]]\nname = \"orders\"\nkeys = [{ name = \"pk\", type = \"S\" }]\n\
                [[sinks]]\ntype = \"jsonl\"\ndir = \"out\"\n";
    assert!(parse_loader_str(text, Path::new("loader.toml"), any_variable).is_err());
    let document: toml::Table = toml::from_str(text).expect("TOML");
    assert!(
        !schema_errors(&loader, &document).is_empty(),
        "the loader schema accepts wait_tme"
    );
}

/// The schema follows the parser where serde's attributes say more than
/// the types: `exclude` is an alias of the `drop` transform.
#[test]
fn the_schema_accepts_the_transform_alias_the_parser_accepts() {
    let example = Example {
        place: "alias".to_owned(),
        kind: Block::Fragment,
        text: "[[tables]]\nname = \"orders\"\ntransforms = [{ type = \"exclude\", attributes = [\"a\"] }]\n"
            .to_owned(),
    };
    let document = complete(&example);
    let text = toml::to_string(&document).expect("TOML text");
    parse_str(&text, Path::new("pipeline.toml"), any_variable).expect("the parser accepts exclude");
    assert!(schema_errors(&validator(ConfigKind::Pipeline), &document).is_empty());
}
