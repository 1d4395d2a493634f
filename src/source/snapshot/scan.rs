//! One page of a parallel Scan (`Segment`/`TotalSegments`), sent as a
//! signed request and parsed with the engine's own decoder.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::decode::{decode_item, DecodeError};
use crate::model::Item;
use crate::source::signed::SignedClient;
use crate::source::SourceError;

const OPERATION: &str = "Scan";
const TARGET: &str = "DynamoDB_20120810.Scan";

/// What to scan.
#[derive(Debug, Clone)]
pub struct ScanRequest<'a> {
    /// Table name.
    pub table: &'a str,
    /// This segment.
    pub segment: u32,
    /// All segments.
    pub total_segments: u32,
    /// Where to continue (`LastEvaluatedKey` of the previous page, DynamoDB JSON).
    pub start_key: Option<&'a str>,
    /// Items per page (`Limit`).
    pub limit: Option<u32>,
    /// Strongly consistent reads.
    pub consistent_read: bool,
}

/// One decoded page.
#[derive(Debug)]
pub struct ScanPage {
    /// The items, each decoded or with its error and raw JSON.
    pub items: Vec<Result<Item, (DecodeError, Box<RawValue>)>>,
    /// Where the next page starts; `None` when the segment is done.
    pub last_key: Option<String>,
    /// Read capacity the page consumed, as reported, else estimated from
    /// the response size (4 KB per unit, half for eventually consistent).
    pub capacity_units: f64,
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "Items", default)]
    items: Vec<Box<RawValue>>,
    #[serde(rename = "LastEvaluatedKey", default)]
    last_key: Option<Box<RawValue>>,
    #[serde(rename = "ConsumedCapacity", default)]
    consumed: Option<Consumed>,
}

#[derive(Deserialize)]
struct Consumed {
    #[serde(rename = "CapacityUnits", default)]
    units: Option<f64>,
}

/// Reads one page of one segment.
pub async fn scan_page(
    client: &SignedClient,
    request: &ScanRequest<'_>,
) -> Result<ScanPage, SourceError> {
    let mut body = serde_json::json!({
        "TableName": request.table,
        "Segment": request.segment,
        "TotalSegments": request.total_segments,
        "ConsistentRead": request.consistent_read,
        "ReturnConsumedCapacity": "TOTAL",
    });
    if let Some(limit) = request.limit {
        body["Limit"] = limit.into();
    }
    if let Some(key) = request.start_key {
        let key: serde_json::Value =
            serde_json::from_str(key).map_err(|err| SourceError::Fatal {
                operation: OPERATION,
                message: format!("stored LastEvaluatedKey is not JSON: {err}"),
            })?;
        body["ExclusiveStartKey"] = key;
    }
    let bytes = client.post(OPERATION, TARGET, &body).await?;
    parse_scan(&bytes, request.consistent_read)
}

/// Parses a Scan response body.
pub fn parse_scan(bytes: &[u8], consistent_read: bool) -> Result<ScanPage, SourceError> {
    let body: Body = serde_json::from_slice(bytes).map_err(|err| SourceError::Retryable {
        operation: OPERATION,
        message: format!("unreadable Scan response: {err}"),
    })?;
    let estimated = (bytes.len() as f64 / 4096.0).ceil() * if consistent_read { 1.0 } else { 0.5 };
    let capacity_units = body.consumed.and_then(|c| c.units).unwrap_or(estimated);
    let items = body
        .items
        .into_iter()
        .map(|raw| decode_item(raw.get()).map_err(|err| (err, raw)))
        .collect();
    Ok(ScanPage {
        items,
        last_key: body.last_key.map(|k| k.get().to_owned()),
        capacity_units,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_decode_items_keys_and_capacity() {
        let body = br#"{"Items":[{"pk":{"S":"a"},"n":{"N":"12345678901234567890123456789012345678"},"m":{"M":{"e":{}}}},{"pk":{"Q":"bad"}}],
            "Count":2,"ScannedCount":2,"LastEvaluatedKey":{"pk":{"S":"a"}},
            "ConsumedCapacity":{"TableName":"t","CapacityUnits":1.5}}"#;
        let page = parse_scan(body, false).expect("page");
        assert_eq!(page.items.len(), 2);
        let first = page.items[0].as_ref().expect("decoded");
        assert_eq!(first.get("n").map(|v| v.type_tag()), Some("N"), "{first:?}");
        assert!(page.items[1].is_err());
        assert_eq!(page.last_key.as_deref(), Some(r#"{"pk":{"S":"a"}}"#));
        assert!((page.capacity_units - 1.5).abs() < f64::EPSILON);
    }

    #[test]
    fn capacity_is_estimated_when_not_reported() {
        let page = parse_scan(br#"{"Items":[],"Count":0}"#, true).expect("page");
        assert!(page.last_key.is_none());
        assert!((page.capacity_units - 1.0).abs() < f64::EPSILON);
    }
}
