//! Generates recorded DynamoDB Streams traffic for replay and benchmarks:
//! stream records exactly as GetRecords returns them (DynamoDB JSON images,
//! NEW_AND_OLD_IMAGES), as JSON Lines (one record per line) or as GetRecords
//! pages (`{"Records":[…]}` per line). Mixed inserts, modifies and removes over
//! a key space with a configurable skew; items of every type, sized between
//! `--min-bytes` and `--max-bytes`.
//!
//!   cargo run --release --example gen_records -- --records 200000 --out records.jsonl

use std::io::Write as _;

use base64::Engine as _;
use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    /// Records to write.
    #[arg(long, default_value_t = 200_000)]
    records: usize,
    /// Output file.
    #[arg(long)]
    out: std::path::PathBuf,
    /// `jsonl` (a record per line) or `pages` (GetRecords pages of 1,000 per line).
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Distinct items.
    #[arg(long, default_value_t = 50_000)]
    keys: usize,
    /// Key skew: 0 = uniform; s > 0 picks key ⌊keys·u^(1+s)⌋, so low keys are hot.
    #[arg(long, default_value_t = 1.0)]
    skew: f64,
    /// Smallest item, bytes of DynamoDB JSON (about).
    #[arg(long, default_value_t = 500)]
    min_bytes: usize,
    /// Largest item.
    #[arg(long, default_value_t = 4000)]
    max_bytes: usize,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// From this record on, new images carry one more attribute, `late`
    /// (an integer): a column that appears mid-stream.
    #[arg(long)]
    late_from: Option<usize>,
    /// From this record on, `late` holds a decimal: a column that widens mid-stream.
    #[arg(long)]
    late_decimal_from: Option<usize>,
}

/// Adds `late` to a new image when the record is past `--late-from`.
fn add_late(args: &Args, index: usize, image: &mut Value) {
    if args.late_from.is_none_or(|from| index < from) {
        return;
    }
    let text = if args.late_decimal_from.is_some_and(|from| index >= from) {
        format!("{index}.5")
    } else {
        index.to_string()
    };
    if let Some(item) = image.as_object_mut() {
        item.insert("late".into(), n(text));
    }
}

fn n(text: String) -> Value {
    json!({ "N": text })
}

fn image(rng: &mut fastrand::Rng, keys: &Value, bytes: usize) -> Value {
    let mut item = keys.as_object().cloned().unwrap_or_default();
    let status = ["new", "paid", "shipped", "returned"][rng.usize(..4)];
    item.insert("status".into(), json!({ "S": status }));
    item.insert(
        "amount".into(),
        n(format!("{}.{:02}", rng.u32(..1_000_000), rng.u8(..100))),
    );
    item.insert(
        "big".into(),
        n(format!(
            "{}{:018}{:019}",
            rng.u8(1..10),
            rng.u64(..10u64.pow(18)),
            rng.u64(..10u64.pow(19))
        )),
    );
    item.insert("tiny".into(), n("1E-130".into()));
    item.insert("flag".into(), json!({"BOOL": rng.bool()}));
    item.insert("nothing".into(), json!({"NULL": true}));
    let blob: Vec<u8> = (0..rng.usize(4..32)).map(|_| rng.u8(..)).collect();
    item.insert(
        "blob".into(),
        json!({"B": base64::engine::general_purpose::STANDARD.encode(blob)}),
    );
    item.insert(
        "tags".into(),
        json!({"SS": (0..rng.usize(1..5)).map(|i| format!("tag-{i}-{}", rng.u8(..))).collect::<Vec<_>>()}),
    );
    item.insert(
        "scores".into(),
        json!({"NS": (0..rng.usize(1..4)).map(|i| format!("{}", i * 1000 + rng.usize(..999))).collect::<Vec<_>>()}),
    );
    item.insert(
        "address".into(),
        json!({"M": {
            "street": {"S": format!("{} Main St", rng.u16(..))},
            "zip": {"S": format!("{:05}", rng.u32(..100_000))},
            "geo": {"L": [n(format!("{}.{:06}", rng.u8(..90), rng.u32(..1_000_000))), n(format!("-{}.{:06}", rng.u8(..180), rng.u32(..1_000_000)))]},
            "empty": {"M": {}}
        }}),
    );
    // Pad with a description to reach the item's size.
    let so_far = serde_json::to_string(&item).map_or(0, |s| s.len());
    let pad = bytes.saturating_sub(so_far + 30);
    let text: String = (0..pad).map(|_| rng.alphanumeric()).collect();
    item.insert("description".into(), json!({ "S": text }));
    Value::Object(item)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args.out)?);
    let mut live = vec![false; args.keys];
    let mut page: Vec<Value> = Vec::new();
    let mut bytes_written = 0usize;
    for index in 0..args.records {
        let u = rng.f64();
        let key = ((args.keys as f64) * u.powf(1.0 + args.skew)) as usize % args.keys;
        let keys = json!({
            "pk": {"S": format!("customer#{key:08}")},
            "sk": {"N": (key % 7).to_string()},
        });
        let size = rng.usize(args.min_bytes..=args.max_bytes);
        let (name, new_image, old_image) = if !live[key] {
            live[key] = true;
            ("INSERT", Some(image(&mut rng, &keys, size)), None)
        } else if rng.u8(..10) == 0 {
            live[key] = false;
            ("REMOVE", None, Some(image(&mut rng, &keys, size)))
        } else {
            (
                "MODIFY",
                Some(image(&mut rng, &keys, size)),
                Some(image(&mut rng, &keys, size)),
            )
        };
        let mut dynamodb = serde_json::Map::new();
        dynamodb.insert(
            "ApproximateCreationDateTime".into(),
            json!(1_763_800_000 + index / 1000),
        );
        dynamodb.insert("Keys".into(), keys);
        if let Some(mut image) = new_image {
            add_late(&args, index, &mut image);
            dynamodb.insert("NewImage".into(), image);
        }
        if let Some(image) = old_image {
            dynamodb.insert("OldImage".into(), image);
        }
        dynamodb.insert(
            "SequenceNumber".into(),
            json!(format!("{:021}", 100 + index)),
        );
        dynamodb.insert("SizeBytes".into(), json!(size));
        dynamodb.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
        let record = json!({
            "eventID": format!("{index:032x}"),
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
        });
        if args.format == "pages" {
            page.push(record);
            if page.len() == 1000 || index + 1 == args.records {
                let line =
                    serde_json::to_string(&json!({ "Records": page, "NextShardIterator": "x" }))?;
                bytes_written += line.len() + 1;
                writeln!(out, "{line}")?;
                page.clear();
            }
        } else {
            let line = serde_json::to_string(&record)?;
            bytes_written += line.len() + 1;
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    println!(
        "wrote {} records ({:.1} MB, {:.0} bytes per record) to {}",
        args.records,
        bytes_written as f64 / 1e6,
        bytes_written as f64 / args.records as f64,
        args.out.display()
    );
    Ok(())
}
