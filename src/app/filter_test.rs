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
use crate::config::{LoaderConfig, PipelineConfig};
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

/// The configuration whose stage is tested: a pipeline's (`run`,
/// `snapshot`, `replay`) or a loader's (`load`).
#[derive(Debug, Clone, Copy)]
pub enum FilterTestConfig<'a> {
    /// A pipeline configuration.
    Pipeline(&'a PipelineConfig),
    /// A loader configuration.
    Loader(&'a LoaderConfig),
}

impl FilterTestConfig<'_> {
    fn table_names(self) -> Vec<String> {
        match self {
            Self::Pipeline(c) => c.tables.iter().map(|t| t.name.clone()).collect(),
            Self::Loader(c) => c.tables.iter().map(|t| t.name.clone()).collect(),
        }
    }
}

/// Explains every record of the file, in order, to `each`; returns the
/// sinks' names in configuration order.
pub async fn run_filter_test(
    config: FilterTestConfig<'_>,
    options: &FilterTestOptions,
    mut each: impl FnMut(FilterTestEntry),
) -> Result<Vec<String>, EngineError> {
    let table = pick_table(&config.table_names(), options.table.as_deref())?;
    let (sinks, (stages, _dimensions)) = match config {
        FilterTestConfig::Pipeline(c) => {
            (c.sinks.as_slice(), TableStages::start_pipeline(c).await?)
        }
        FilterTestConfig::Loader(c) => (c.sinks.as_slice(), TableStages::start_loader(c).await?),
    };
    let routes = sink_routes(sinks)?;
    let names: Vec<String> = sinks.iter().map(|entry| entry.name()).collect();
    let routes = Routes::new(stages.tables, stages.joins, routes);
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
fn pick_table(tables: &[String], table: Option<&str>) -> Result<String, EngineError> {
    let known = || tables.join(", ");
    match (table, tables) {
        (Some(name), tables) if tables.iter().any(|t| t == name) => Ok(name.to_owned()),
        (Some(name), _) => Err(EngineError::UnknownTable {
            table: name.to_owned(),
            known: known(),
        }),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(EngineError::Config(format!(
            "the configuration has several tables ({}): say which with --table",
            known()
        ))),
    }
}
