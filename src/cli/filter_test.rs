//! Prints `dynamo-cdc filter-test`'s explanations: text for people, or one
//! JSON object per record (`--json`), then a summary line.

use std::io::Write as _;

use crate::app::{run_filter_test, FilterTestConfig, FilterTestEntry, FilterTestOptions};
use crate::model::ChangeEvent;
use crate::transform::{Explanation, StageReport, StageResult};

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    records: u64,
    kept: u64,
    filtered: u64,
    skipped: u64,
    failed: u64,
    undecodable: u64,
}

/// Explains every record of the file on standard output.
pub async fn print(
    config: FilterTestConfig<'_>,
    options: &FilterTestOptions,
    json: bool,
) -> anyhow::Result<()> {
    let mut tally = Tally::default();
    let mut out = std::io::stdout().lock();
    let mut failure: Option<std::io::Error> = None;
    run_filter_test(config, options, |entry| {
        tally.records += 1;
        let text = match &entry {
            FilterTestEntry::Explained { input, explanation } => {
                tally.count(&explanation.table.result);
                match json {
                    true => json_line(tally.records, input, explanation),
                    false => text_block(tally.records, input, explanation),
                }
            }
            FilterTestEntry::Undecodable { reason } => {
                tally.undecodable += 1;
                match json {
                    true => {
                        serde_json::json!({"record": tally.records, "error": reason}).to_string()
                            + "\n"
                    }
                    false => format!("record {}: does not decode: {reason}\n", tally.records),
                }
            }
        };
        if let Err(err) = out.write_all(text.as_bytes()) {
            failure.get_or_insert(err);
        }
    })
    .await?;
    if let Some(err) = failure {
        return Err(err.into());
    }
    let summary = format!(
        "{} records: {} kept, {} filtered out, {} dropped by a filter transform, {} failed a transform (would be dead-lettered), {} undecodable",
        tally.records, tally.kept, tally.filtered, tally.skipped, tally.failed, tally.undecodable
    );
    match json {
        true => eprintln!("{summary}"),
        false => writeln!(out, "{summary}")?,
    }
    Ok(())
}

impl Tally {
    fn count(&mut self, result: &StageResult) {
        match result {
            StageResult::Kept(_) => self.kept += 1,
            StageResult::Filtered => self.filtered += 1,
            StageResult::Skipped => self.skipped += 1,
            StageResult::Failed(_) => self.failed += 1,
        }
    }
}

fn json_line(record: u64, input: &ChangeEvent, explanation: &Explanation) -> String {
    let keys = serde_json::to_value(&input.keys).unwrap_or_default();
    let line = serde_json::json!({
        "record": record,
        "op": input.op,
        "keys": keys,
        "sequence": input.position.sequence.as_str(),
        "table": explanation.table,
        "joins": explanation.joins,
        "sinks": explanation.sinks,
    });
    line.to_string() + "\n"
}

fn text_block(record: u64, input: &ChangeEvent, explanation: &Explanation) -> String {
    let keys = serde_json::to_string(&input.keys).unwrap_or_default();
    let mut text = format!(
        "record {record}: {} {keys} (sequence {})\n  table {}: {}\n",
        input.op.as_str(),
        input.position.sequence.as_str(),
        input.table,
        describe(&explanation.table)
    );
    for join in &explanation.joins {
        let what = match (&join.key, join.matched) {
            (None, _) => {
                "the change lacks a key attribute (or it is not a string or number): not joined"
                    .to_owned()
            }
            (Some(key), false) => format!("key {key:?}: no row, not joined"),
            (Some(key), true) => format!("key {key:?}: matched, added {}", join.added.join(", ")),
        };
        text += &format!("  join {}: {what}\n", join.dimension);
    }
    for sink in &explanation.sinks {
        let what = match (&sink.stage, sink.routed) {
            (_, false) => "not routed here (its `tables` leaves this table out)".to_owned(),
            (None, true) => "receives the change as the table's stage left it".to_owned(),
            (Some(stage), true) => format!("its own stage: {}", describe(stage)),
        };
        text += &format!("  sink {}: {what}\n", sink.sink);
    }
    text
}

/// `filters 0, 2 match; kept: {…}`.
fn describe(report: &StageReport) -> String {
    let filters = match &report.matched {
        None => String::new(),
        Some(matched) if matched.is_empty() => "no filter matches; ".to_owned(),
        Some(matched) => {
            let list: Vec<String> = matched.iter().map(|i| format!("filters[{i}]")).collect();
            let verb = if list.len() == 1 { "matches" } else { "match" };
            format!("{} {verb}; ", list.join(", "))
        }
    };
    let outcome = match &report.result {
        StageResult::Kept(event) => {
            let mut line = Vec::new();
            event.write_json_line(&mut line);
            format!("kept: {}", String::from_utf8_lossy(&line).trim_end())
        }
        StageResult::Filtered => "filtered out (acknowledged, not delivered)".to_owned(),
        StageResult::Skipped => "dropped by a `filter` transform".to_owned(),
        StageResult::Failed(reason) => {
            format!("a transform failed ({reason}); it would be dead-lettered")
        }
    };
    filters + &outcome
}
