//! The command line: argument parsing, logging setup and the commands.

mod args;
mod commands;
mod config_schema;
mod filter_test;
mod import;
mod leases;
mod logging;
mod schema;
mod schema_infer;
mod schema_report;
mod status;

pub use args::{
    CheckpointsCommand, Cli, Command, InferFormat, LogFormat, SchemaCommand, SchemaKind,
};
pub use commands::execute;
pub use logging::init_logging;
