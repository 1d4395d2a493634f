//! `${VAR}` / `${VAR:-default}` substitution in configuration strings; `$$` is a literal `$`.

/// Replaces `${NAME}` with the value of `lookup(NAME)`, `${NAME:-fallback}`
/// with the fallback when the variable is unset or empty, and `$$` with `$`.
///
/// Errors name the variable that is missing or the malformed reference.
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
            let reference = &body[..end];
            let (name, fallback) = match reference.split_once(":-") {
                Some((name, fallback)) => (name, Some(fallback)),
                None => (reference, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("`${{{reference}}}` is not a variable name"));
            }
            match (lookup(name).filter(|v| !v.is_empty()), fallback) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(fallback)) => out.push_str(fallback),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set"));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_and_falls_back() {
        assert_eq!(
            interpolate("http://${HOST}:1", env).unwrap(),
            "http://db.local:1"
        );
        assert_eq!(interpolate("${NOPE:-x}${EMPTY:-y}", env).unwrap(), "xy");
        assert_eq!(interpolate("cost $$5 or $5", env).unwrap(), "cost $5 or $5");
        assert_eq!(interpolate("no refs", env).unwrap(), "no refs");
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(
            interpolate("${MISSING}", env).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert!(interpolate("${HOST", env).unwrap_err().contains("unclosed"));
        assert!(interpolate("${a b}", env)
            .unwrap_err()
            .contains("not a variable name"));
    }
}
