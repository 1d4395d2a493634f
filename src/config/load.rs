//! Reading a configuration file: TOML syntax, `${ENV}` interpolation of strings, typed fields, validation.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::{interpolate, validate, ConfigError, LoaderConfig, PipelineConfig};

/// Reads, interpolates, parses and validates a pipeline configuration file.
pub fn load_file(path: &Path) -> Result<PipelineConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse_str(&text, path, |name| std::env::var(name).ok())
}

/// Parses configuration text; `file` is only used in error messages and
/// `env` resolves `${NAME}` references.
pub fn parse_str(
    text: &str,
    file: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PipelineConfig, ConfigError> {
    let config: PipelineConfig = parse_typed(text, file, env)?;
    validate::validate(&config).map_err(|(field, message)| ConfigError::Field {
        file: file.to_owned(),
        field,
        message,
    })?;
    Ok(config)
}

/// Reads, interpolates, parses and validates a loader configuration file.
pub fn load_loader_file(path: &Path) -> Result<LoaderConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    parse_loader_str(&text, path, |name| std::env::var(name).ok())
}

/// Parses loader configuration text (see [`parse_str`]).
pub fn parse_loader_str(
    text: &str,
    file: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<LoaderConfig, ConfigError> {
    let config: LoaderConfig = parse_typed(text, file, env)?;
    validate::validate_loader(&config).map_err(|(field, message)| ConfigError::Field {
        file: file.to_owned(),
        field,
        message,
    })?;
    Ok(config)
}

/// TOML syntax, `${ENV}` interpolation of strings, then typed fields.
fn parse_typed<T: DeserializeOwned>(
    text: &str,
    file: &Path,
    env: impl Fn(&str) -> Option<String>,
) -> Result<T, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|err| ConfigError::Syntax {
        file: file.to_owned(),
        line: err
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1),
        message: err.message().trim().to_owned(),
    })?;
    for (key, value) in table.iter_mut() {
        interpolate_value(value, key, &env).map_err(|(field, message)| ConfigError::Field {
            file: file.to_owned(),
            field,
            message,
        })?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| ConfigError::Field {
        file: file.to_owned(),
        field: match err.path().to_string() {
            path if path.is_empty() || path == "." => "(top level)".to_owned(),
            path => path,
        },
        message: err.inner().message().trim().to_owned(),
    })
}

fn interpolate_value(
    value: &mut toml::Value,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), (String, String)> {
    match value {
        toml::Value::String(text) => {
            *text = interpolate(text, env).map_err(|message| (path.to_owned(), message))?;
        }
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                interpolate_value(item, &format!("{path}[{index}]"), env)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                interpolate_value(item, &format!("{path}.{key}"), env)?;
            }
        }
        _ => {}
    }
    Ok(())
}
