//! Checks of the enrichment settings: `[enrich]`, `[[dimensions]]` and
//! each table's `enrich` joins (names that resolve, key parts that line
//! up, columns a dimension has). No I/O: a file that is missing or wrong
//! is found when the pipeline starts, with the file and line named.

use std::collections::HashMap;

use super::validate::{invalid, Invalid};
use crate::dimension::{DimensionConfig, DimensionFormat};
use crate::transform::EnrichConfig;
use crate::transform::{JoinConfig, ENRICH_DIMENSION};

/// Checks `[enrich]`, the dimensions, and each table's joins (`tables`
/// in configuration order, named `tables[i]` in errors).
pub(super) fn validate_enrichment<'a>(
    enrich: Option<&EnrichConfig>,
    dimensions: &[DimensionConfig],
    tables: impl IntoIterator<Item = &'a [JoinConfig]>,
) -> Result<(), Invalid> {
    if let Some(enrich) = enrich {
        validate_enrich(enrich)?;
    }
    let mut by_name: HashMap<&str, &DimensionConfig> = HashMap::new();
    for (index, dimension) in dimensions.iter().enumerate() {
        let field = format!("dimensions[{index}]");
        validate_dimension(dimension, &field)?;
        if dimension.name == ENRICH_DIMENSION && enrich.is_some() {
            return Err(invalid(
                format!("{field}.name"),
                "\"enrich\" is the name of the [enrich] table: choose another",
            ));
        }
        if by_name.insert(&dimension.name, dimension).is_some() {
            return Err(invalid(
                format!("{field}.name"),
                format!("dimension {:?} is listed twice", dimension.name),
            ));
        }
    }
    for (table, joins) in tables.into_iter().enumerate() {
        for (index, join) in joins.iter().enumerate() {
            validate_join(join, &format!("tables[{table}].enrich[{index}]"), &by_name)?;
        }
    }
    Ok(())
}

/// Checks the `[enrich]` join's file type and columns.
fn validate_enrich(enrich: &EnrichConfig) -> Result<(), Invalid> {
    if DimensionFormat::from_path(&enrich.path).is_none() {
        return Err(invalid(
            "enrich.path",
            format!("{:?} must end in .parquet, .csv or .jsonl", enrich.path),
        ));
    }
    check_built(&enrich.path, "enrich.path")?;
    if enrich.columns.is_empty() {
        return Err(invalid("enrich.columns", "name at least one column to add"));
    }
    Ok(())
}

fn validate_dimension(dimension: &DimensionConfig, field: &str) -> Result<(), Invalid> {
    if dimension.name.trim().is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    if DimensionFormat::from_path(&dimension.path).is_none() {
        return Err(invalid(
            format!("{field}.path"),
            format!("{:?} must end in .parquet, .csv or .jsonl", dimension.path),
        ));
    }
    check_built(&dimension.path, &format!("{field}.path"))?;
    if dimension.key.is_empty() || dimension.key.iter().any(|k| k.trim().is_empty()) {
        return Err(invalid(format!("{field}.key"), "name the key column(s)"));
    }
    if dimension.columns.is_empty() {
        return Err(invalid(
            format!("{field}.columns"),
            "name at least one column to add",
        ));
    }
    if dimension.memory_budget_mb == 0 {
        return Err(invalid(
            format!("{field}.memory_budget_mb"),
            "must be at least 1",
        ));
    }
    Ok(())
}

/// Refuses a file this build cannot read: Parquet without the `parquet`
/// feature, an `s3://` path without the `s3` feature.
fn check_built(path: &str, field: &str) -> Result<(), Invalid> {
    let missing = if path.starts_with("s3://") && !cfg!(feature = "s3") {
        Some(("reading s3:// files", "s3"))
    } else if DimensionFormat::from_path(path) == Some(DimensionFormat::Parquet)
        && !cfg!(feature = "parquet")
    {
        Some(("reading Parquet", "parquet"))
    } else {
        None
    };
    match missing {
        Some((what, feature)) => Err(invalid(field, crate::error_text::not_built(what, feature))),
        None => Ok(()),
    }
}

fn validate_join(
    join: &JoinConfig,
    field: &str,
    dimensions: &HashMap<&str, &DimensionConfig>,
) -> Result<(), Invalid> {
    let Some(dimension) = dimensions.get(join.dimension.as_str()) else {
        let known: Vec<&str> = dimensions.keys().copied().collect();
        return Err(invalid(
            format!("{field}.dimension"),
            format!(
                "{:?} is not a [[dimensions]] name (known: {})",
                join.dimension,
                known.join(", ")
            ),
        ));
    };
    if join.on.len() != dimension.key.len() {
        return Err(invalid(
            format!("{field}.on"),
            format!(
                "names {} attribute(s) but dimension {:?} has a key of {} column(s) ({}): one attribute per key part",
                join.on.len(),
                dimension.name,
                dimension.key.len(),
                dimension.key.join(", ")
            ),
        ));
    }
    for (index, column) in join.columns.iter().flatten().enumerate() {
        if !dimension.columns.contains(column) {
            return Err(invalid(
                format!("{field}.columns[{index}]"),
                format!(
                    "{column:?} is not one of dimension {:?}'s columns ({})",
                    dimension.name,
                    dimension.columns.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
