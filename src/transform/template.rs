//! Templates of computed attributes: `"{first} {last}"`, where `{name}`
//! is the text of a scalar attribute of the same image and `{{`, `}}` are
//! literal braces.

use crate::model::{AttributeValue, Item};

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Attribute(String),
}

impl Template {
    /// Parses `text`; errors say what is wrong and at which character.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let name: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '}')
                        .collect();
                    let closed = text[at + 1..].contains('}');
                    if !closed {
                        return Err(format!("the `{{` at character {at} is never closed"));
                    }
                    if name.is_empty() || name.contains('{') {
                        return Err(format!(
                            "`{{{name}}}` at character {at} does not name an attribute"
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Attribute(name));
                }
                '}' => {
                    return Err(format!(
                        "the `}}` at character {at} closes nothing (write `}}}}` for a brace)"
                    ))
                }
                other => literal.push(other),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// The text for `image`; `None` when a named attribute is missing or
    /// is not a string, number or boolean.
    pub fn render(&self, image: &Item) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Attribute(name) => match image.get(name)? {
                    AttributeValue::S(text) => out.push_str(text),
                    AttributeValue::N(number) => out.push_str(number.as_str()),
                    AttributeValue::Bool(flag) => {
                        out.push_str(if *flag { "true" } else { "false" })
                    }
                    _ => return None,
                },
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Number;

    fn item() -> Item {
        Item::from([
            ("first".into(), AttributeValue::S("Ada".into())),
            (
                "n".into(),
                AttributeValue::N(Number::parse("1.50").unwrap()),
            ),
            ("ok".into(), AttributeValue::Bool(true)),
            ("l".into(), AttributeValue::L(vec![])),
        ])
    }

    #[test]
    fn renders_scalars_and_braces() {
        let template = Template::parse("{{{first}}} #{n} {ok}").unwrap();
        assert_eq!(
            template.render(&item()).as_deref(),
            Some("{Ada} #1.50 true")
        );
        assert_eq!(
            Template::parse("plain").unwrap().render(&item()).as_deref(),
            Some("plain")
        );
    }

    #[test]
    fn missing_or_structured_attributes_render_nothing() {
        assert_eq!(
            Template::parse("{first} {last}").unwrap().render(&item()),
            None
        );
        assert_eq!(Template::parse("{l}").unwrap().render(&item()), None);
    }

    #[test]
    fn bad_templates_say_where() {
        assert!(Template::parse("a {first")
            .unwrap_err()
            .contains("character 2 is never closed"));
        assert!(Template::parse("a } b")
            .unwrap_err()
            .contains("character 2 closes nothing"));
        assert!(Template::parse("{}")
            .unwrap_err()
            .contains("does not name an attribute"));
    }
}
