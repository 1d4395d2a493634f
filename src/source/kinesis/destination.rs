//! The check a table's Kinesis streaming destination gets when the table
//! is described.

use super::super::streams::StreamsApi;

/// Warns when a table's Kinesis streaming destination is missing or has
/// millisecond timestamps (two changes of one item within a millisecond
/// cannot be ordered). Stand-ins without the API (DynamoDB Local) are skipped.
pub async fn check_destination(api: &StreamsApi, table: &str, stream: &str) {
    match api.kinesis_precision(table, stream).await {
        Ok(Some(precision)) if precision == "MICROSECOND" => {}
        Ok(Some(precision)) => tracing::warn!(
            table, stream, precision,
            "the table's Kinesis destination stamps changes in {precision} precision: two changes of one \
             item within the same millisecond cannot be ordered. Set it to MICROSECOND (aws dynamodb \
             update-kinesis-streaming-destination --table-name {table} --stream-arn ARN \
             --update-kinesis-streaming-configuration ApproximateCreationDateTimePrecision=MICROSECOND)"
        ),
        Ok(None) => tracing::warn!(
            table, stream,
            "the table has no active Kinesis streaming destination to this stream: no new changes will arrive \
             (aws dynamodb enable-kinesis-streaming-destination)"
        ),
        Err(err) => tracing::debug!(table, stream, "cannot check the Kinesis streaming destination: {err}"),
    }
}
