//! The metric names, their units and what they mean: one place, so that a
//! new source, sink or coordinator adds a metric with one line where the
//! thing happens (`metrics::counter!(names::X, labels).increment(n)`).
//! Without an endpoint no recorder is installed and those lines cost next
//! to nothing.

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};

/// Stream records read, by `table` and `shard`.
pub const RECORDS_READ: &str = "dynamo_cdc_records_read_total";
/// GetRecords calls, by `table`.
pub const GET_RECORDS_CALLS: &str = "dynamo_cdc_get_records_calls_total";
/// Source calls refused for throughput (throttling), by `table`.
pub const THROTTLES: &str = "dynamo_cdc_throttles_total";
/// Expired shard iterators replaced, by `table`.
pub const ITERATOR_RENEWALS: &str = "dynamo_cdc_iterator_renewals_total";
/// Records that failed to decode, by `table`.
pub const DECODE_ERRORS: &str = "dynamo_cdc_decode_errors_total";
/// Records written to the dead-letter file, by `table` and `stage`.
pub const DEAD_LETTERS: &str = "dynamo_cdc_dead_letters_total";
/// Changes a filter pattern or a `filter` transform dropped, by `table`
/// and `by` (`table` for the table's own stage, else the sink's name).
pub const CHANGES_FILTERED: &str = "dynamo_cdc_changes_filtered_total";
/// Enrichment lookups, by `dimension` and `result` (`matched`, `missed`:
/// no row has the key, or the change lacks a key attribute).
pub const ENRICH_LOOKUPS: &str = "dynamo_cdc_enrich_lookups_total";
/// Dimension index builds, by `dimension` and `outcome` (`built`,
/// `reused`: an index on disk still matched its file, `failed`).
pub const DIMENSION_BUILDS: &str = "dynamo_cdc_dimension_builds_total";
/// Rows of the dimension index in use, by `dimension`.
pub const DIMENSION_ROWS: &str = "dynamo_cdc_dimension_rows";
/// Time the last dimension index build took, by `dimension`.
pub const DIMENSION_BUILD_SECONDS: &str = "dynamo_cdc_dimension_build_seconds";
/// Records a sink wrote, by `sink`.
pub const SINK_WRITTEN: &str = "dynamo_cdc_sink_records_written_total";
/// Records a sink's server refused (dead-lettered), by `sink`.
pub const SINK_REJECTED: &str = "dynamo_cdc_sink_records_rejected_total";
/// Batch writes a sink retried after a transient failure, by `sink`.
pub const SINK_RETRIES: &str = "dynamo_cdc_sink_retries_total";
/// Requests a request-based sink sent, by `sink` and `outcome` (`ok`: an
/// answer to read; `retry`: a transient failure; `error`: a fatal one).
pub const SINK_REQUESTS: &str = "dynamo_cdc_sink_requests_total";
/// Time of one request of a request-based sink, by `sink`.
pub const SINK_REQUEST_SECONDS: &str = "dynamo_cdc_sink_request_duration_seconds";
/// Items of a per-item-answer sink by `sink` and `result`: `written`,
/// `stale` (a newer version was already there: Elasticsearch's 409),
/// `retried` (answered 429 or 5xx, sent again), `refused` (dead-lettered);
/// Kafka's records: `produced`, `delivered`, `failed` (the batch is
/// retried), `refused`.
pub const SINK_ITEMS: &str = "dynamo_cdc_sink_items_total";
/// Records a sink's client holds that are not yet acknowledged (Kafka's
/// producer queue), by `sink`.
pub const SINK_QUEUE_DEPTH: &str = "dynamo_cdc_sink_queue_depth";
/// Pairs of one shard's changes whose order the sink's version mapping
/// could not keep (should stay 0; see the Elasticsearch sink's versions), by `sink`.
pub const SINK_VERSION_ORDER_LOST: &str = "dynamo_cdc_sink_version_order_lost_total";
/// Kafka transactions of an exactly-once sink, by `sink` and `result`:
/// `committed`, `aborted` (the batch is retried), `fenced` (another worker
/// took the shard over; its reader stopped here).
pub const KAFKA_TRANSACTIONS: &str = "dynamo_cdc_kafka_transactions_total";
/// Typed columns or mapped fields a sink added or widened, by `sink`, `table` and `change` (`added`, `widened`, `suffixed`).
pub const SCHEMA_CHANGES: &str = "dynamo_cdc_schema_changes_total";
/// Values that fit no typed column and stay in the item column only, by `sink` and `table`.
pub const SCHEMA_UNTYPED_VALUES: &str = "dynamo_cdc_schema_untyped_values_total";
/// Time from the start of a Kafka transaction to its commit, by `sink`.
pub const KAFKA_TRANSACTION_SECONDS: &str = "dynamo_cdc_kafka_transaction_duration_seconds";
/// Time to write one batch (retries included), by `sink`.
pub const SINK_BATCH_SECONDS: &str = "dynamo_cdc_sink_batch_duration_seconds";
/// Since when a sink has been failing (Unix seconds; 0 when it is not), by `sink`.
pub const SINK_FAILING_SINCE: &str = "dynamo_cdc_sink_failing_since_seconds";
/// How far the reader is behind the shard's newest change, by `table` and `shard`.
pub const READ_LAG: &str = "dynamo_cdc_read_lag_seconds";
/// How far the slowest sink is behind the shard's newest change, by `table` and `shard`.
pub const SINK_LAG: &str = "dynamo_cdc_sink_lag_seconds";
/// Time since the shard's checkpoint last moved, by `table` and `shard`.
pub const CHECKPOINT_AGE: &str = "dynamo_cdc_checkpoint_age_seconds";
/// Items a snapshot delivered, by `table`.
pub const SNAPSHOT_ITEMS: &str = "dynamo_cdc_snapshot_items_total";
/// Snapshot segments finished by this process, by `table`.
pub const SNAPSHOT_SEGMENTS_DONE: &str = "dynamo_cdc_snapshot_segments_done_total";
/// Leases this worker holds.
pub const LEASES_HELD: &str = "dynamo_cdc_leases_held";
/// Leases this worker took, by `how` (`unowned`, `expired`, `stolen`).
pub const LEASES_TAKEN: &str = "dynamo_cdc_leases_taken_total";
/// Leases this worker lost to another.
pub const LEASES_LOST: &str = "dynamo_cdc_leases_lost_total";
/// CPU time of the process.
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
/// Resident memory of the process.
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";

/// Registers every metric's unit and help text with the installed recorder.
pub fn describe() {
    let counters = [
        (RECORDS_READ, "Stream records read.", Unit::Count),
        (GET_RECORDS_CALLS, "GetRecords calls.", Unit::Count),
        (
            THROTTLES,
            "Source calls refused for throughput.",
            Unit::Count,
        ),
        (
            ITERATOR_RENEWALS,
            "Expired shard iterators replaced.",
            Unit::Count,
        ),
        (DECODE_ERRORS, "Records that failed to decode.", Unit::Count),
        (
            DEAD_LETTERS,
            "Records written to the dead-letter file.",
            Unit::Count,
        ),
        (
            CHANGES_FILTERED,
            "Changes a filter dropped, by table and stage.",
            Unit::Count,
        ),
        (
            ENRICH_LOOKUPS,
            "Enrichment lookups, by dimension and result (matched, missed).",
            Unit::Count,
        ),
        (
            DIMENSION_BUILDS,
            "Dimension index builds, by outcome (built, reused, failed).",
            Unit::Count,
        ),
        (SINK_WRITTEN, "Records a sink wrote.", Unit::Count),
        (
            SINK_REQUESTS,
            "Requests a sink sent, by outcome.",
            Unit::Count,
        ),
        (
            SINK_ITEMS,
            "Items of a sink's requests, by result (written, stale, retried, refused).",
            Unit::Count,
        ),
        (
            SINK_VERSION_ORDER_LOST,
            "Change pairs whose order a sink's version mapping could not keep.",
            Unit::Count,
        ),
        (
            SINK_REJECTED,
            "Records a sink's server refused.",
            Unit::Count,
        ),
        (
            SINK_RETRIES,
            "Batch writes retried after a transient failure.",
            Unit::Count,
        ),
        (SNAPSHOT_ITEMS, "Items a snapshot delivered.", Unit::Count),
        (
            SNAPSHOT_SEGMENTS_DONE,
            "Snapshot segments finished here.",
            Unit::Count,
        ),
        (LEASES_TAKEN, "Leases this worker took.", Unit::Count),
        (
            KAFKA_TRANSACTIONS,
            "Kafka transactions of an exactly-once sink, by result.",
            Unit::Count,
        ),
        (
            SCHEMA_CHANGES,
            "Typed columns or mapped fields a sink added or widened, by change (added, widened, suffixed).",
            Unit::Count,
        ),
        (
            SCHEMA_UNTYPED_VALUES,
            "Values that fit no typed column and stay in the item column only.",
            Unit::Count,
        ),
        (
            LEASES_LOST,
            "Leases this worker lost to another.",
            Unit::Count,
        ),
    ];
    for (name, help, unit) in counters {
        describe_counter!(name, unit, help);
    }
    let gauges = [
        (
            SINK_QUEUE_DEPTH,
            "Records a sink's client holds that are not yet acknowledged.",
            Unit::Count,
        ),
        (
            READ_LAG,
            "How far the reader is behind the shard's newest change.",
            Unit::Seconds,
        ),
        (
            SINK_LAG,
            "How far the slowest sink is behind the shard's newest change.",
            Unit::Seconds,
        ),
        (
            CHECKPOINT_AGE,
            "Time since the shard's checkpoint last moved.",
            Unit::Seconds,
        ),
        (
            SINK_FAILING_SINCE,
            "Since when a sink has been failing (0: it is not).",
            Unit::Seconds,
        ),
        (LEASES_HELD, "Leases this worker holds.", Unit::Count),
        (
            PROCESS_CPU,
            "CPU time of the process (user and system).",
            Unit::Seconds,
        ),
        (PROCESS_RSS, "Resident memory of the process.", Unit::Bytes),
        (
            DIMENSION_ROWS,
            "Rows of the dimension index in use.",
            Unit::Count,
        ),
        (
            DIMENSION_BUILD_SECONDS,
            "Time the last dimension index build took.",
            Unit::Seconds,
        ),
    ];
    for (name, help, unit) in gauges {
        describe_gauge!(name, unit, help);
    }
    describe_histogram!(
        SINK_BATCH_SECONDS,
        Unit::Seconds,
        "Time to write one batch, retries included."
    );
    describe_histogram!(
        KAFKA_TRANSACTION_SECONDS,
        Unit::Seconds,
        "Time from the start of a Kafka transaction to its commit."
    );
    describe_histogram!(
        SINK_REQUEST_SECONDS,
        Unit::Seconds,
        "Time of one request of a request-based sink."
    );
}
