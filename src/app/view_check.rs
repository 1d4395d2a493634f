//! Filters against the stream's view type: a table whose filters (its own,
//! or those of a sink it is routed to) can only match records carrying an
//! image the stream never carries would have every change filtered out.
//! That is a configuration mistake, reported before anything is read.

use super::EngineError;
use crate::config::PipelineConfig;
use crate::source::streams::ViewType;
use crate::transform::pattern::{Filters, ImagePart};
use crate::transform::Stage;

/// Checks the filters that apply to table `index` against `view`.
pub(super) fn check_filters(
    config: &PipelineConfig,
    index: usize,
    view: ViewType,
) -> Result<(), EngineError> {
    let table = &config.tables[index];
    let own = Stage::compile(&table.filters, &table.transforms).map(|s| s.filters().clone());
    if let Ok(filters) = own {
        check(
            &filters,
            view,
            &table.name,
            &format!("tables[{index}].filters"),
        )?;
    }
    for (s, sink) in config.sinks.iter().enumerate() {
        let routed = sink
            .tables
            .as_ref()
            .is_none_or(|names| names.contains(&table.name));
        let Ok(route) = sink.route() else { continue };
        if routed {
            let place = format!("sinks[{s}].filters");
            check(route.stage.filters(), view, &table.name, &place)?;
        }
    }
    Ok(())
}

fn check(filters: &Filters, view: ViewType, table: &str, place: &str) -> Result<(), EngineError> {
    let carried = [
        (ImagePart::New, view.has_new_image()),
        (ImagePart::Old, view.has_old_image()),
    ];
    for (image, carried) in carried {
        if !carried && filters.all_need_image(image) {
            return Err(EngineError::Config(format!(
                "{place}: every pattern needs dynamodb.{} of table {table}, whose stream \
                 ({view:?}) does not carry it, so every change would be filtered out; \
                 change the stream's view type or the filters",
                image.field()
            )));
        }
    }
    Ok(())
}
