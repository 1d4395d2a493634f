//! Decode throughput against the JSON parse ceiling, one thread, on records
//! recorded by `gen_records` (JSON Lines): serde_json validating each record
//! (`IgnoredAny`), serde_json building a `Value`, the engine's decoder
//! (`decode_record` → `ChangeEvent`), and decoding plus writing the event as a
//! JSON Lines change (what the `jsonl` sink does per record). With
//! `--kinesis`, the records are first rewritten (untimed) into the format
//! DynamoDB writes to a Kinesis stream, and the Kinesis decoder is measured.

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

/// The engine binary's allocator, so that the numbers are the engine's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    /// A JSON Lines file of stream records.
    #[arg(long)]
    input: std::path::PathBuf,
    /// Passes over the input per measurement (best one is reported).
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Measure the engine only (no serde_json ceilings), e.g. under a profiler.
    #[arg(long)]
    engine_only: bool,
    /// Rewrite the records into the Kinesis streaming destination format
    /// and measure the Kinesis decoder instead.
    #[arg(long)]
    kinesis: bool,
}

fn measure(
    label: &str,
    lines: &[&str],
    bytes: usize,
    passes: usize,
    mut f: impl FnMut(&str) -> usize,
) {
    let mut best = f64::MAX;
    let mut best_cpu = f64::MAX;
    let mut check = 0usize;
    for _ in 0..passes {
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        check = 0;
        for line in lines {
            check = check.wrapping_add(f(line));
        }
        best = best.min(start.elapsed().as_secs_f64());
        if let (Some(from), Some(to)) = (cpu_start, thread_cpu_seconds()) {
            best_cpu = best_cpu.min(to - from);
        }
    }
    // The rate per CPU-second of this thread: what the code does when the
    // machine's other work takes the processor away (10 ms resolution).
    let cpu_rate = if best_cpu > 0.0 && best_cpu < f64::MAX {
        format!("{:.0}", lines.len() as f64 / best_cpu)
    } else {
        "?".to_owned()
    };
    println!(
        "{label:<40} {:>10.0} records/s {:>8.1} MB/s   ({:.3} s per pass, check {check}; {cpu_rate} records/CPU-s)",
        lines.len() as f64 / best,
        bytes as f64 / best / 1e6,
        best
    );
}

/// This thread's user + system time in seconds (Linux `/proc`, in clock
/// ticks of 10 ms), or `None` where it cannot be read.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime and stime the 12th and 13th.
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = after.split(' ').skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut text = std::fs::read_to_string(&args.input)?;
    if args.kinesis {
        text = to_kinesis_format(&text)?;
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let bytes = text.len();
    println!(
        "{} records, {:.1} MB ({:.0} bytes per record), best of {} passes, one thread",
        lines.len(),
        bytes as f64 / 1e6,
        bytes as f64 / lines.len().max(1) as f64,
        args.passes
    );
    if !args.engine_only {
        ceilings(&lines, bytes, args.passes);
    }
    if args.kinesis {
        measure_kinesis(&lines, bytes, args.passes);
    } else {
        measure_engine(&lines, bytes, args.passes);
    }
    Ok(())
}

/// Streams records as DynamoDB writes them to Kinesis: no SequenceNumber,
/// `tableName`, and microsecond creation times.
fn to_kinesis_format(text: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (index, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
        let mut record: serde_json::Value = serde_json::from_str(line)?;
        let dynamodb = record["dynamodb"]
            .as_object_mut()
            .ok_or_else(|| anyhow::anyhow!("record {index} has no dynamodb object"))?;
        dynamodb.remove("SequenceNumber");
        dynamodb.insert(
            "ApproximateCreationDateTime".into(),
            (1_732_881_600_000_000u64 + index as u64).into(),
        );
        dynamodb.insert(
            "ApproximateCreationDateTimePrecision".into(),
            "MICROSECOND".into(),
        );
        record["tableName"] = "orders".into();
        record["recordFormat"] = "application/json".into();
        out.push_str(&record.to_string());
        out.push('\n');
    }
    Ok(out)
}

/// The Kinesis decoder, alone and with the JSON Lines change it writes.
fn measure_kinesis(lines: &[&str], bytes: usize, passes: usize) {
    let shard: Arc<str> = Arc::from("shardId-000000000000");
    let table: Arc<str> = Arc::from("orders");
    let sequence = "49590338271490256608559692538361571095921575989136588898";
    let followed = |name: &str| (name == "orders").then(|| Arc::clone(&table));
    let decode = |l: &str| {
        dynamo_cdc::decode::kinesis::decode_kinesis_record(l.as_bytes(), sequence, &shard, followed)
    };
    measure(
        "decode_kinesis_record (engine decoder)",
        lines,
        bytes,
        passes,
        |l| match decode(l) {
            Ok(dynamo_cdc::decode::kinesis::KinesisRecord::Change { event, .. }) => {
                event.keys.len()
            }
            _ => 0,
        },
    );
    let mut out = Vec::with_capacity(1 << 20);
    measure(
        "decode_kinesis_record + JSON Lines change",
        lines,
        bytes,
        passes,
        |l| {
            out.clear();
            match decode(l) {
                Ok(dynamo_cdc::decode::kinesis::KinesisRecord::Change { event, .. }) => {
                    event.write_json_line(&mut out);
                    out.len()
                }
                _ => 0,
            }
        },
    );
}

/// serde_json and simd-json alone on the same bytes: the parse ceiling.
fn ceilings(lines: &[&str], bytes: usize, passes: usize) {
    // simd-json parses in place: each record is first copied into a scratch
    // buffer (included in its time, as a decoder would have to).
    let mut scratch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut buffers = simd_json::Buffers::default();
    measure("simd-json parse only (tape)", lines, bytes, passes, |l| {
        scratch.clear();
        scratch.extend_from_slice(l.as_bytes());
        usize::from(simd_json::to_tape_with_buffers(&mut scratch, &mut buffers).is_ok())
    });
    measure(
        "serde_json parse only (IgnoredAny)",
        lines,
        bytes,
        passes,
        |l| usize::from(serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok()),
    );
    measure("serde_json parse to Value", lines, bytes, passes, |l| {
        serde_json::from_str::<serde_json::Value>(l).map_or(0, |v| usize::from(v.is_object()))
    });
}

/// The engine's decoder, alone and with the JSON Lines change it writes.
fn measure_engine(lines: &[&str], bytes: usize, passes: usize) {
    let table: Arc<str> = Arc::from("orders");
    let shard: Arc<str> = Arc::from("shardId-0");
    measure(
        "decode_record (engine decoder)",
        lines,
        bytes,
        passes,
        |l| dynamo_cdc::decode::decode_record(l, &table, &shard).map_or(0, |e| e.keys.len()),
    );
    let mut out = Vec::with_capacity(1 << 20);
    measure(
        "decode_record + JSON Lines change event",
        lines,
        bytes,
        passes,
        |l| {
            out.clear();
            match dynamo_cdc::decode::decode_record(l, &table, &shard) {
                Ok(event) => {
                    event.write_json_line(&mut out);
                    out.len()
                }
                Err(_) => 0,
            }
        },
    );
}
