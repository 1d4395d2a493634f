#![no_main]
//! Feeds arbitrary UTF-8 text to `config::parse_str` and `config::parse_loader_str` (TOML syntax, `${ENV}` interpolation, typed fields, validation): no panic, whatever the text.

use std::path::Path;

use dynamo_cdc::config::{parse_loader_str, parse_str};
use libfuzzer_sys::fuzz_target;

fn env(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("db.local".into()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("pipeline.toml");
    if let Err(err) = parse_str(text, file, env) {
        drop(err.to_string());
    }
    if let Err(err) = parse_loader_str(text, file, env) {
        drop(err.to_string());
    }
});
