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

/// What kind of metric a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric's kind, unit and help text, as registered with the recorder.
#[derive(Debug, Clone, Copy)]
struct Described {
    kind: Kind,
    name: &'static str,
    unit: Unit,
    help: &'static str,
}

impl Described {
    const fn new(kind: Kind, name: &'static str, unit: Unit, help: &'static str) -> Self {
        Self {
            kind,
            name,
            unit,
            help,
        }
    }
}

/// A counter's description.
const fn counter(name: &'static str, unit: Unit, help: &'static str) -> Described {
    Described::new(Kind::Counter, name, unit, help)
}

/// A gauge's description.
const fn gauge(name: &'static str, unit: Unit, help: &'static str) -> Described {
    Described::new(Kind::Gauge, name, unit, help)
}

/// A histogram's description.
const fn histogram(name: &'static str, unit: Unit, help: &'static str) -> Described {
    Described::new(Kind::Histogram, name, unit, help)
}

/// Every metric's description, counters first, then gauges, then histograms.
const DESCRIBED: &[Described] = &[
    counter(RECORDS_READ, Unit::Count, "Stream records read."),
    counter(GET_RECORDS_CALLS, Unit::Count, "GetRecords calls."),
    counter(
        THROTTLES,
        Unit::Count,
        "Source calls refused for throughput.",
    ),
    counter(
        ITERATOR_RENEWALS,
        Unit::Count,
        "Expired shard iterators replaced.",
    ),
    counter(DECODE_ERRORS, Unit::Count, "Records that failed to decode."),
    counter(
        DEAD_LETTERS,
        Unit::Count,
        "Records written to the dead-letter file.",
    ),
    counter(
        CHANGES_FILTERED,
        Unit::Count,
        "Changes a filter dropped, by table and stage.",
    ),
    counter(
        ENRICH_LOOKUPS,
        Unit::Count,
        "Enrichment lookups, by dimension and result (matched, missed).",
    ),
    counter(
        DIMENSION_BUILDS,
        Unit::Count,
        "Dimension index builds, by outcome (built, reused, failed).",
    ),
    counter(SINK_WRITTEN, Unit::Count, "Records a sink wrote."),
    counter(
        SINK_REQUESTS,
        Unit::Count,
        "Requests a sink sent, by outcome.",
    ),
    counter(
        SINK_ITEMS,
        Unit::Count,
        "Items of a sink's requests, by result (written, stale, retried, refused).",
    ),
    counter(
        SINK_VERSION_ORDER_LOST,
        Unit::Count,
        "Change pairs whose order a sink's version mapping could not keep.",
    ),
    counter(
        SINK_REJECTED,
        Unit::Count,
        "Records a sink's server refused.",
    ),
    counter(
        SINK_RETRIES,
        Unit::Count,
        "Batch writes retried after a transient failure.",
    ),
    counter(SNAPSHOT_ITEMS, Unit::Count, "Items a snapshot delivered."),
    counter(
        SNAPSHOT_SEGMENTS_DONE,
        Unit::Count,
        "Snapshot segments finished here.",
    ),
    counter(LEASES_TAKEN, Unit::Count, "Leases this worker took."),
    counter(
        KAFKA_TRANSACTIONS,
        Unit::Count,
        "Kafka transactions of an exactly-once sink, by result.",
    ),
    counter(
        SCHEMA_CHANGES,
        Unit::Count,
        concat!(
            "Typed columns or mapped fields a sink added or widened, ",
            "by change (added, widened, suffixed)."
        ),
    ),
    counter(
        SCHEMA_UNTYPED_VALUES,
        Unit::Count,
        "Values that fit no typed column and stay in the item column only.",
    ),
    counter(
        LEASES_LOST,
        Unit::Count,
        "Leases this worker lost to another.",
    ),
    gauge(
        SINK_QUEUE_DEPTH,
        Unit::Count,
        "Records a sink's client holds that are not yet acknowledged.",
    ),
    gauge(
        READ_LAG,
        Unit::Seconds,
        "How far the reader is behind the shard's newest change.",
    ),
    gauge(
        SINK_LAG,
        Unit::Seconds,
        "How far the slowest sink is behind the shard's newest change.",
    ),
    gauge(
        CHECKPOINT_AGE,
        Unit::Seconds,
        "Time since the shard's checkpoint last moved.",
    ),
    gauge(
        SINK_FAILING_SINCE,
        Unit::Seconds,
        "Since when a sink has been failing (0: it is not).",
    ),
    gauge(LEASES_HELD, Unit::Count, "Leases this worker holds."),
    gauge(
        PROCESS_CPU,
        Unit::Seconds,
        "CPU time of the process (user and system).",
    ),
    gauge(PROCESS_RSS, Unit::Bytes, "Resident memory of the process."),
    gauge(
        DIMENSION_ROWS,
        Unit::Count,
        "Rows of the dimension index in use.",
    ),
    gauge(
        DIMENSION_BUILD_SECONDS,
        Unit::Seconds,
        "Time the last dimension index build took.",
    ),
    histogram(
        SINK_BATCH_SECONDS,
        Unit::Seconds,
        "Time to write one batch, retries included.",
    ),
    histogram(
        KAFKA_TRANSACTION_SECONDS,
        Unit::Seconds,
        "Time from the start of a Kafka transaction to its commit.",
    ),
    histogram(
        SINK_REQUEST_SECONDS,
        Unit::Seconds,
        "Time of one request of a request-based sink.",
    ),
];

/// Registers every metric's unit and help text with the installed recorder.
pub fn describe() {
    for metric in DESCRIBED {
        let Described {
            kind,
            name,
            unit,
            help,
        } = *metric;
        match kind {
            Kind::Counter => describe_counter!(name, unit, help),
            Kind::Gauge => describe_gauge!(name, unit, help),
            Kind::Histogram => describe_histogram!(name, unit, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_described_once() {
        let mut names: Vec<&str> = DESCRIBED.iter().map(|m| m.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a metric is described twice");
        for name in names {
            assert!(
                name.starts_with("dynamo_cdc_") || name.starts_with("process_"),
                "{name} lacks the engine's prefix"
            );
        }
    }
}
