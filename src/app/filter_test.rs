//! `dynamo-cdc filter-test`: reads recorded stream records (any shape
//! `replay` reads) and explains, for each, what the configured transform
//! stage does: which filters match, what the transforms leave, and what
//! each sink receives. Nothing is written anywhere; the enrichment table,
//! when configured, is loaded as `run` would load it.

use std::path::PathBuf;
use std::sync::Arc;

use super::replay_input::{read_file, Entry};
use super::sinks::{sink_routes, TableStages};
use super::EngineError;
use crate::config::PipelineConfig;
use crate::model::ChangeEvent;
use crate::transform::{Explanation, Routes};

/// What to test.
#[derive(Debug, Clone)]
pub struct FilterTestOptions {
    /// The table the records belong to; the only configured table when `None`.
    pub table: Option<String>,
    /// The records.
    pub file: PathBuf,
}

/// One record of the file and what the stage does to it.
#[derive(Debug)]
pub enum FilterTestEntry {
    /// A record that decoded.
    Explained {
        /// The change as read.
        input: Box<ChangeEvent>,
        /// What the stage does to it.
        explanation: Explanation,
    },
    /// A record that does not decode (the pipeline would dead-letter it).
    Undecodable {
        /// Why, naming the file, line and record.
        reason: String,
    },
}

/// Explains every record of the file, in order, to `each`; returns the
/// sinks' names in configuration order.
pub async fn run_filter_test(
    config: &PipelineConfig,
    options: &FilterTestOptions,
    mut each: impl FnMut(FilterTestEntry),
) -> Result<Vec<String>, EngineError> {
    let table = pick_table(config, options.table.as_deref())?;
    let (enrichment, _reloads) =
        super::dimension::start_enrichment(config.enrich.as_ref(), &config.aws).await?;
    let stages = TableStages::for_pipeline(config, enrichment)?;
    let routes = sink_routes(&config.sinks)?;
    let names: Vec<String> = config.sinks.iter().map(|entry| entry.name()).collect();
    let routes = Routes::new(stages.tables, stages.enrichment, routes);
    let table: Arc<str> = Arc::from(table);
    read_file(&options.file, &table, 1000, |entries| {
        for entry in entries {
            each(match entry {
                Entry::Event(event) => FilterTestEntry::Explained {
                    explanation: routes.explain((*event).clone(), &names),
                    input: event,
                },
                Entry::Bad { reason, .. } => FilterTestEntry::Undecodable { reason },
            });
        }
        Ok(())
    })
    .map_err(EngineError::Replay)?;
    Ok(names)
}

/// The named table, which must be configured, or the only configured one.
fn pick_table(config: &PipelineConfig, table: Option<&str>) -> Result<String, EngineError> {
    let known = || {
        config
            .tables
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (table, config.tables.as_slice()) {
        (Some(name), tables) if tables.iter().any(|t| t.name == name) => Ok(name.to_owned()),
        (Some(name), _) => Err(EngineError::UnknownTable {
            table: name.to_owned(),
            known: known(),
        }),
        (None, [only]) => Ok(only.name.clone()),
        (None, _) => Err(EngineError::Config(format!(
            "the configuration has several tables ({}): say which with --table",
            known()
        ))),
    }
}
