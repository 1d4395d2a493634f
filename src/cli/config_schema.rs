//! `dynamo-cdc config-schema`: the JSON Schema of a configuration file, or
//! its Markdown reference, on standard output.

use std::io::Write as _;

use anyhow::Context as _;

use super::SchemaKind;
use crate::config::{self, ConfigKind};

/// Prints the schema (or, with `markdown`, the reference page) of `kind`.
pub fn print(kind: SchemaKind, markdown: bool) -> anyhow::Result<()> {
    let kind = match kind {
        SchemaKind::Pipeline => ConfigKind::Pipeline,
        SchemaKind::Loader => ConfigKind::Loader,
    };
    let text = if markdown {
        config::reference_markdown(kind)
    } else {
        config::json_schema_text(kind)
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to standard output")
}
