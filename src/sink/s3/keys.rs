//! Object names: derived from the content only, so the same batch written
//! again (a replay after a crash) lands on the same key.

use std::time::{Duration, UNIX_EPOCH};

/// `<prefix><table>/dt=YYYY-MM-DD/<shard>-<first>-<last>.<extension>`, the date
/// being the first change's approximate creation date (UTC; the epoch's when unknown).
pub fn object_key(
    prefix: &str,
    table: &str,
    shard: &str,
    first_sequence: &str,
    last_sequence: &str,
    first_approx_ms: Option<i64>,
    extension: &str,
) -> String {
    let millis = u64::try_from(first_approx_ms.unwrap_or(0)).unwrap_or(0);
    let day = humantime::format_rfc3339(UNIX_EPOCH + Duration::from_millis(millis)).to_string();
    let day = day.get(..10).unwrap_or("1970-01-01");
    format!("{prefix}{table}/dt={day}/{shard}-{first_sequence}-{last_sequence}.{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout() {
        assert_eq!(
            object_key(
                "landing/",
                "orders",
                "shardId-1",
                "0001",
                "0009",
                Some(1_700_000_000_000),
                "jsonl.gz"
            ),
            "landing/orders/dt=2023-11-14/shardId-1-0001-0009.jsonl.gz"
        );
        assert_eq!(
            object_key("", "t", "s", "1", "2", None, "parquet"),
            "t/dt=1970-01-01/s-1-2.parquet"
        );
    }
}
