//! The PostgreSQL sink's inferred columns (`columns = "auto"`): opened at
//! start, and evolved before each batch's rows are built.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{classify, Failure, PostgresSink};
use crate::model::{Item, SequenceNumber};
use crate::sink::postgres::auto_columns::{create_history_table, PgAutoColumns};
use crate::sink::{Batch, SinkError};

impl PostgresSink {
    /// With `columns = "auto"`: creates the history table when missing and
    /// reads each table's inferred columns.
    pub(super) async fn open_auto_columns(&mut self, schema: &str) -> Result<(), SinkError> {
        let name = self.name.clone();
        let fatal = |e: tokio_postgres::Error| SinkError::Fatal {
            sink: name.clone(),
            message: format!("inferred columns: {}", crate::error_text::with_causes(&e)),
        };
        let tables = self.tables.clone();
        let client = self.client().await?;
        crate::sink::postgres::ddl::create_if_missing(client, &create_history_table(schema))
            .await
            .map_err(fatal)?;
        let auto = PgAutoColumns::open(&name, client, schema, &tables)
            .await
            .map_err(fatal)?;
        for (source, table) in &mut self.tables {
            table.columns = auto.columns(source);
        }
        self.auto = Some(auto);
        Ok(())
    }

    /// With `columns = "auto"`: adds and widens the columns `batch` needs
    /// in `tables` (whose rows found values without one), from its decoded
    /// items; the rows are then built again.
    pub(super) async fn evolve_columns(
        &mut self,
        batch: &Batch,
        tables: &HashSet<Arc<str>>,
    ) -> Result<(), SinkError> {
        let Some(mut auto) = self.auto.take() else {
            return Ok(());
        };
        let result = self.evolve_with(&mut auto, batch, tables).await;
        self.auto = Some(auto);
        result
    }

    async fn evolve_with(
        &mut self,
        auto: &mut PgAutoColumns,
        batch: &Batch,
        needed: &HashSet<Arc<str>>,
    ) -> Result<(), SinkError> {
        let mut items: HashMap<Arc<str>, Vec<(&Item, &SequenceNumber)>> = HashMap::new();
        for (_, event) in batch.events().filter(|(_, e)| needed.contains(&e.table)) {
            let image = event.new_image.as_ref().filter(|_| event.op.is_upsert());
            if let Some(item) = image.and_then(|image| image.item().ok()) {
                items
                    .entry(Arc::clone(&event.table))
                    .or_default()
                    .push((item, event.version()));
            }
        }
        let name = self.name.clone();
        for (source, items) in items {
            let Some(table) = self.tables.get(&source).cloned() else {
                continue;
            };
            let client = self.client().await?;
            let changed =
                auto.evolve(client, &table, &items)
                    .await
                    .map_err(|err| match classify(&err) {
                        Failure::Fatal(message) => SinkError::Fatal {
                            sink: name.clone(),
                            message: format!("changing inferred columns: {message}"),
                        },
                        Failure::Transient(message) | Failure::Data(message) => {
                            SinkError::Transient {
                                sink: name.clone(),
                                message: format!("changing inferred columns: {message}"),
                            }
                        }
                    })?;
            if changed {
                if let Some(table) = self.tables.get_mut(&source) {
                    table.columns = auto.columns(&source);
                }
                // The staging tables follow the targets' columns.
                self.staged = false;
            }
        }
        Ok(())
    }
}
