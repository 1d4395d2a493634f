//! `_bulk` requests: actions as NDJSON, cut at count and byte limits, and
//! each item of the answer sorted into done, retry, refused or fatal.

use serde::Deserialize;
use serde_json::value::RawValue;

/// One versioned action on one document.
#[derive(Debug, Clone)]
pub struct Action {
    /// Where the change sits in the batch: (chunk, event).
    pub slot: (usize, usize),
    /// The action and metadata line, without the newline.
    pub header: String,
    /// The document line for `index`; none for `delete`.
    pub document: Option<String>,
}

impl Action {
    /// An action line: `{"index":{"_index":…,"_id":…,"version":…,"version_type":"external_gte"}}`.
    /// The index name is checked by the config and ids and routing values
    /// hold only URL-unreserved characters, so they are written as they are.
    pub fn header(op: &str, index: &str, id: &str, version: i64, routing: Option<&str>) -> String {
        let mut header = format!(
            r#"{{"{op}":{{"_index":"{index}","_id":"{id}","version":{version},"version_type":"external_gte""#
        );
        if let Some(routing) = routing {
            header.push_str(&format!(r#","routing":"{routing}""#));
        }
        header.push_str("}}");
        header
    }

    /// Bytes this action adds to a request.
    pub fn size(&self) -> usize {
        self.header.len() + 1 + self.document.as_ref().map_or(0, |d| d.len() + 1)
    }
}

/// Splits `actions` into requests of at most `max_actions` actions and
/// (unless one action alone is larger) `max_bytes` bytes, keeping order.
pub fn split_requests(
    actions: Vec<Action>,
    max_actions: usize,
    max_bytes: usize,
) -> Vec<Vec<Action>> {
    let mut requests = Vec::new();
    let mut current: Vec<Action> = Vec::new();
    let mut bytes = 0;
    for action in actions {
        let size = action.size();
        let full =
            current.len() >= max_actions || (bytes + size > max_bytes && !current.is_empty());
        if full {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(action);
    }
    if !current.is_empty() {
        requests.push(current);
    }
    requests
}

/// The NDJSON body of one request.
pub fn ndjson(actions: &[Action]) -> Vec<u8> {
    let mut body = Vec::with_capacity(actions.iter().map(Action::size).sum());
    for action in actions {
        body.extend_from_slice(action.header.as_bytes());
        body.push(b'\n');
        if let Some(document) = &action.document {
            body.extend_from_slice(document.as_bytes());
            body.push(b'\n');
        }
    }
    body
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written, or a delete found nothing to delete.
    Done,
    /// A newer version was already there (409): nothing to do.
    Stale,
    /// Worth sending again (429, 5xx).
    Retry(String),
    /// The document was refused (mapping or parse error): a dead letter.
    Refused(String),
    /// Retrying cannot help and the pipeline must stop (auth, missing index).
    Fatal(String),
}

#[derive(Deserialize)]
struct BulkAnswer<'a> {
    #[serde(default)]
    errors: bool,
    #[serde(borrow, default)]
    items: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Sorts the answer to a request of `count` actions into one outcome per
/// action, in order; an answer that cannot be read is an error.
pub fn item_outcomes(body: &[u8], count: usize) -> Result<Vec<ItemOutcome>, String> {
    let answer: BulkAnswer<'_> =
        serde_json::from_slice(body).map_err(|err| format!("unreadable _bulk answer: {err}"))?;
    if !answer.errors {
        return Ok(vec![ItemOutcome::Done; count]);
    }
    if answer.items.len() != count {
        return Err(format!(
            "the _bulk answer has {} items for {count} actions",
            answer.items.len()
        ));
    }
    answer
        .items
        .iter()
        .map(|raw| {
            // Each item is `{"<op>": {…}}`.
            let by_op: std::collections::HashMap<String, ItemResult> =
                serde_json::from_str(raw.get())
                    .map_err(|err| format!("unreadable _bulk item: {err}"))?;
            let result = by_op.into_values().next().ok_or("an empty _bulk item")?;
            Ok(classify(result.status, result.error.as_ref()))
        })
        .collect()
}

fn classify(status: u16, error: Option<&serde_json::Value>) -> ItemOutcome {
    let kind = error.and_then(|e| e["type"].as_str()).unwrap_or_default();
    let reason = match error {
        Some(error) => {
            let mut text = format!("{kind}: {}", error["reason"].as_str().unwrap_or_default());
            if let Some(cause) = error["caused_by"]["reason"].as_str() {
                text.push_str(&format!(" (caused by: {cause})"));
            }
            text
        }
        None => format!("HTTP {status}"),
    };
    match status {
        200..=299 => ItemOutcome::Done,
        409 => ItemOutcome::Stale,
        404 if error.is_none() => ItemOutcome::Done,
        404 if kind == "index_not_found_exception" => ItemOutcome::Fatal(format!(
            "{reason} (create the index, allow automatic index creation, or set create_index = true)"
        )),
        429 | 500..=599 => ItemOutcome::Retry(reason),
        400 => ItemOutcome::Refused(reason),
        401 | 403 => ItemOutcome::Fatal(format!("not allowed to write: {reason}")),
        _ => ItemOutcome::Fatal(format!("HTTP {status}: {reason}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(slot: usize, document: Option<&str>) -> Action {
        Action {
            slot: (0, slot),
            header: Action::header("index", "t", &slot.to_string(), 7, None),
            document: document.map(str::to_owned),
        }
    }

    #[test]
    fn requests_respect_both_limits_and_keep_order() {
        let actions: Vec<Action> = (0..10).map(|i| action(i, Some("{\"a\":1}"))).collect();
        let size = actions[0].size();
        let by_count = split_requests(actions.clone(), 4, usize::MAX);
        assert_eq!(
            by_count.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        let by_bytes = split_requests(actions.clone(), 100, size * 3);
        assert_eq!(
            by_bytes.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let one_each = split_requests(actions, 100, 1);
        assert_eq!(one_each.len(), 10);
        let order: Vec<usize> = one_each.iter().flatten().map(|a| a.slot.1).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn ndjson_puts_documents_after_their_action() {
        let body = ndjson(&[action(1, Some("{}")), action(2, None)]);
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "{\"index\":{\"_index\":\"t\",\"_id\":\"1\",\"version\":7,\"version_type\":\"external_gte\"}}\n{}\n\
             {\"index\":{\"_index\":\"t\",\"_id\":\"2\",\"version\":7,\"version_type\":\"external_gte\"}}\n"
        );
    }

    #[test]
    fn item_answers_are_sorted_by_what_can_be_done() {
        let body = br#"{"errors":true,"items":[
            {"index":{"status":201}},
            {"index":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"newer"}}},
            {"delete":{"status":404,"result":"not_found"}},
            {"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}},
            {"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]","caused_by":{"reason":"out of range"}}}},
            {"index":{"status":404,"error":{"type":"index_not_found_exception","reason":"no such index [t]"}}},
            {"index":{"status":403,"error":{"type":"security_exception","reason":"no"}}},
            {"index":{"status":503,"error":{"type":"unavailable_shards_exception","reason":"down"}}}
        ]}"#;
        let outcomes = item_outcomes(body, 8).unwrap();
        assert_eq!(
            outcomes[..3],
            [ItemOutcome::Done, ItemOutcome::Stale, ItemOutcome::Done]
        );
        assert!(matches!(outcomes[3], ItemOutcome::Retry(_)));
        assert_eq!(
            outcomes[4],
            ItemOutcome::Refused(
                "mapper_parsing_exception: failed to parse field [n] (caused by: out of range)"
                    .into()
            )
        );
        assert!(matches!(&outcomes[5], ItemOutcome::Fatal(m) if m.contains("create_index")));
        assert!(matches!(outcomes[6], ItemOutcome::Fatal(_)));
        assert!(matches!(outcomes[7], ItemOutcome::Retry(_)));
        assert_eq!(
            item_outcomes(br#"{"errors":false,"items":[]}"#, 3)
                .unwrap()
                .len(),
            3
        );
        assert!(item_outcomes(br#"{"errors":true,"items":[]}"#, 3).is_err());
        assert!(item_outcomes(b"<html>", 1).is_err());
    }
}
