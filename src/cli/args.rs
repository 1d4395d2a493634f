//! Command-line arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Change-data-capture for Amazon DynamoDB: follows table streams and keeps
/// sinks up to date, without losing or double-applying a change.
#[derive(Debug, Parser)]
#[command(name = "dynamo-cdc", version, about, long_about = None)]
pub struct Cli {
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true, env = "DYNAMO_CDC_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `dynamo_cdc=debug,info`); RUST_LOG wins when set.
    #[arg(long, default_value = "info", global = true)]
    pub log_level: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The config file argument shared by every command.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Pipeline configuration file (TOML).
    #[arg(long, short = 'c', env = "DYNAMO_CDC_CONFIG")]
    pub config: PathBuf,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Follow the configured tables' streams into the sinks until stopped (SIGINT/SIGTERM).
    Run {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Exit with status 0 once every shard is read to its current end and every change is acknowledged.
        #[arg(long)]
        exit_when_caught_up: bool,
        /// How often to log a progress line.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        progress_interval: Duration,
    },
    /// Copy the tables' current contents into the sinks (parallel Scan) and
    /// record where their streams resume, then exit; `run` streams on from there.
    Snapshot {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Only this table (repeatable); every configured table by default.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// How often to log a progress line when not on a terminal.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        progress_interval: Duration,
    },
    /// Replay recorded stream records into the configured sinks at full
    /// speed, then exit: JSON Lines of records, GetRecords pages or Lambda
    /// events, or dead-letter files. Undecodable input goes to the dead letters.
    Replay {
        /// The configuration (its sinks and state_dir are used).
        #[command(flatten)]
        config: ConfigArg,
        /// The source table the records belong to.
        #[arg(long)]
        table: String,
        /// Key attributes, partition key first (`pk:S,sk:N`); by default the
        /// first record's keys.
        #[arg(long, value_parser = parse_keys)]
        keys: Option<KeyList>,
        /// Input files or directories (their files in name order), replayed in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load objects announced on SQS (by the s3 sink) into the configured sinks, with transforms and enrichment.
    Load {
        /// The loader configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Exit with status 0 once the queue is empty and everything received is loaded.
        #[arg(long)]
        exit_when_idle: bool,
    },
    /// Show what the configured filters, transforms and sink routes do to
    /// recorded stream records (any file `replay` reads), without writing
    /// anything: which filters match each record, and what each sink receives.
    FilterTest {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// The table the records belong to (needed when several are configured).
        #[arg(long)]
        table: Option<String>,
        /// Print one JSON object per record instead of text.
        #[arg(long)]
        json: bool,
        /// The configuration is a loader's (`dynamo-cdc load`), not a pipeline's.
        #[arg(long)]
        loader: bool,
        /// The records: JSON Lines of stream records, GetRecords pages,
        /// Lambda events, change events or dead letters.
        record_file: PathBuf,
    },
    /// Parse and check the configuration without connecting to anything.
    Validate {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// For each table and shard: position, checkpoint age, owner and lag
    /// (from the running engine's metrics endpoint), and dead letters.
    Status {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Print one JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Typed columns: the recorded history of `columns = "auto"` sinks, and
    /// columns inferred from a sample of each table.
    Schema {
        /// What to show.
        #[command(subcommand)]
        command: SchemaCommand,
    },
    /// Print the JSON Schema of a configuration file, derived from the
    /// config types (for editors and checks), or its Markdown reference.
    ConfigSchema {
        /// Which file: a pipeline's, or a loader's (`dynamo-cdc load`).
        #[arg(long, value_enum, default_value_t = SchemaKind::Pipeline)]
        kind: SchemaKind,
        /// Print the Markdown reference of every option instead (the book's reference page).
        #[arg(long)]
        markdown: bool,
    },
    /// Inspect or reset stored checkpoints.
    Checkpoints {
        /// What to do with them.
        #[command(subcommand)]
        command: CheckpointsCommand,
    },
}

/// Schema commands.
#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Print every column a sink added or widened, with the change version
    /// where it took effect (from the sink's own store).
    Show {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Only this sink (by name); every sink that keeps a history by default.
        #[arg(long)]
        sink: Option<String>,
        /// Only this source table.
        #[arg(long)]
        table: Option<String>,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sample each table (parallel Scan and the stream's recent records) and
    /// describe its attributes: types with counts, presence, numeric range,
    /// precision and scale, nested shape and conflicts, with the typed
    /// column each configured sink would make. Prints TOML `[[sinks.columns]]`
    /// to paste under a clickhouse or s3 sink, or a JSON Schema of the items.
    Infer {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Only this table; every configured table by default.
        #[arg(long)]
        table: Option<String>,
        /// Items to Scan per table; as many recent stream images are read too.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        sample: u32,
        /// Output: commented TOML columns, or a JSON Schema (draft 2020-12) per table.
        #[arg(long, value_enum, default_value_t = InferFormat::Toml)]
        format: InferFormat,
    },
}

/// The configuration files `config-schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// A pipeline's configuration (`run`, `snapshot`, `validate`, …).
    Pipeline,
    /// A loader's configuration (`load`).
    Loader,
}

/// Output formats of `schema infer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InferFormat {
    /// A comment block per table and `[[sinks.columns]]` entries.
    Toml,
    /// A JSON Schema (draft 2020-12) of each table's items, in plain JSON form.
    JsonSchema,
}

/// Checkpoint commands.
#[derive(Debug, Subcommand)]
pub enum CheckpointsCommand {
    /// List every shard checkpoint.
    Show {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete checkpoints and snapshot state, so the next run starts a table
    /// over (a snapshot with snapshot = "initial"/"when_needed", else start_position).
    Reset {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// The table whose checkpoints go.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        table: Option<String>,
        /// Delete the checkpoints of every table.
        #[arg(long)]
        all: bool,
    },
    /// Start from a KCL application's checkpoints: read its lease table
    /// (KCL 1.x/2.x/3.x, DynamoDB Streams or Kinesis) and store each
    /// shard's checkpoint (embedded store, or this pipeline's lease table).
    Import {
        /// The configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// The KCL application's lease table (its application name).
        #[arg(long = "kcl-table")]
        kcl_table: String,
        /// For single-stream KCL leases (keyed by shard id): the table
        /// whose stream the application read.
        #[arg(long)]
        table: Option<String>,
    },
}

/// Key attributes given on the command line (`pk:S,sk:N`).
#[derive(Debug, Clone)]
pub struct KeyList(pub Vec<crate::model::KeyAttribute>);

/// Parses `pk:S,sk:N` into key attributes.
fn parse_keys(text: &str) -> Result<KeyList, String> {
    text.split(',')
        .map(|part| {
            let (name, kind) = part
                .split_once(':')
                .ok_or_else(|| format!("{part:?}: expected NAME:TYPE with TYPE S, N or B"))?;
            let kind = match kind {
                "S" => crate::model::KeyKind::S,
                "N" => crate::model::KeyKind::N,
                "B" => crate::model::KeyKind::B,
                other => return Err(format!("{part:?}: key type {other:?} is not S, N or B")),
            };
            if name.is_empty() {
                return Err(format!("{part:?}: empty key name"));
            }
            Ok(crate::model::KeyAttribute {
                name: name.to_owned(),
                kind,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(KeyList)
}
