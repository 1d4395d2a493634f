//! Rendering an error with its causes on one line.

/// `error: cause: cause …`, each cause once, for log lines and messages.
pub fn with_causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `WHAT is not in this build (built without the "FEATURE" feature; rebuild
/// with --features FEATURE)`: the one wording for a part of the engine that
/// a Cargo feature left out.
pub fn not_built(what: &str, feature: &str) -> String {
    format!("{what} is not in this build (built without the {feature:?} feature; rebuild with --features {feature})")
}
