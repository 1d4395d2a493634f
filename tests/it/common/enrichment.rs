//! Generated dimension tables and order changes for the enrichment tests:
//! a composite-key customers CSV and a products JSON Lines file, Lambda
//! events of orders, the join computed independently of the engine, and
//! readers of the JSON Lines sink's output.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use super::engine::command;
use dynamo_cdc::model::{AttributeValue, Item};

/// Regions of the generated changes.
pub const REGIONS: [&str; 3] = ["eu", "us", "ap"];

/// The generated dimension tables, as the test computes joins from them.
pub struct Dimensions {
    /// (region, id) → (name, tier).
    pub customers: BTreeMap<(String, String), (String, String)>,
    /// sku → title.
    pub products: BTreeMap<String, String>,
}

/// Writes `customers.csv` (composite key region + id; every third id of a
/// region missing; names with commas, quotes and newlines) and
/// `products.jsonl` into `dir`.
pub fn write_dimensions(dir: &Path, customers_per_region: usize) -> Dimensions {
    let mut csv = String::from("\u{feff}region,id,name,tier\n");
    let mut customers = BTreeMap::new();
    for region in REGIONS {
        for n in (0..customers_per_region).filter(|n| n % 3 != 1) {
            let id = format!("c{n}");
            let name = match n % 7 {
                0 => format!("Ada, {region} {n}"),
                2 => format!("say \"{n}\""),
                4 => format!("two\nlines {n}"),
                _ => format!("Customer {n}"),
            };
            let tier = (n % 4).to_string();
            csv.push_str(&format!(
                "{region},{id},\"{}\",{tier}\n",
                name.replace('"', "\"\"")
            ));
            customers.insert((region.to_owned(), id), (name, tier));
        }
    }
    std::fs::write(dir.join("customers.csv"), csv).expect("write customers.csv");
    let mut jsonl = String::new();
    let mut products = BTreeMap::new();
    for n in 0..50 {
        let title = format!("Product {n}");
        jsonl.push_str(&format!(
            "{{\"sku\": \"p{n}\", \"title\": \"{title}\", \"price\": 12345678901234567890.{n}}}\n"
        ));
        products.insert(format!("p{n}"), title);
    }
    std::fs::write(dir.join("products.jsonl"), jsonl).expect("write products.jsonl");
    Dimensions {
        customers,
        products,
    }
}

/// The `[[dimensions]]` of both tables, the customers one with a memory
/// budget of `budget_mb`.
pub fn dimensions_config(dir: &Path, budget_mb: u64) -> String {
    format!(
        "[[dimensions]]\nname = \"customers\"\npath = \"{}\"\nkey = [\"region\", \"id\"]\ncolumns = [\"name\", \"tier\"]\nmemory_budget_mb = {budget_mb}\n\n\
         [[dimensions]]\nname = \"products\"\npath = \"{}\"\nkey = \"sku\"\ncolumns = [\"title\", \"price\"]\n\n",
        dir.join("customers.csv").display(),
        dir.join("products.jsonl").display()
    )
}

/// The `enrich` option of the orders table (customers, then products' title).
pub const ORDERS_JOINS: &str = "enrich = [\n  { dimension = \"customers\", on = [\"region\", \"customer\"], prefix = \"c_\" },\n  { dimension = \"products\", on = \"sku\", prefix = \"p_\", columns = [\"title\"] },\n]";
/// The `enrich` option of the returns table (only the customer's name).
pub const RETURNS_JOINS: &str = "enrich = [{ dimension = \"customers\", on = [\"region\", \"customer\"], prefix = \"c_\", columns = [\"name\"] }]";

/// One order change: (pk, region, customer, sku).
pub type Order = (String, String, String, String);

pub fn orders(count: usize, customers_per_region: usize, seed: u64) -> Vec<Order> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|n| {
            (
                format!("o{n}"),
                REGIONS[rng.usize(..REGIONS.len())].to_owned(),
                // A few customers past the dimension's end never match.
                format!("c{}", rng.usize(..customers_per_region + 20)),
                format!("p{}", rng.usize(..60)),
            )
        })
        .collect()
}

/// `item` as the joins should leave it (`products`: whether the products join applies).
pub fn joined(mut item: Item, dimensions: &Dimensions, products: bool, tier: bool) -> Item {
    let text = |item: &Item, name: &str| match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    if let (Some(region), Some(customer)) = (text(&item, "region"), text(&item, "customer")) {
        if let Some((name, level)) = dimensions.customers.get(&(region, customer)) {
            item.insert("c_name".into(), AttributeValue::S(name.clone()));
            if tier {
                item.insert("c_tier".into(), AttributeValue::S(level.clone()));
            }
        }
    }
    if let (true, Some(sku)) = (products, text(&item, "sku")) {
        if let Some(title) = dimensions.products.get(&sku) {
            item.insert("p_title".into(), AttributeValue::S(title.clone()));
        }
    }
    item
}

pub fn order_item(order: &Order) -> Item {
    let s = |v: &str| AttributeValue::S(v.to_owned());
    Item::from([
        ("pk".to_owned(), s(&order.0)),
        ("region".to_owned(), s(&order.1)),
        ("customer".to_owned(), s(&order.2)),
        ("sku".to_owned(), s(&order.3)),
    ])
}

/// A Lambda event of INSERTs of `orders` into `table`.
pub fn lambda_event(table: &str, orders: &[Order]) -> String {
    let records: Vec<serde_json::Value> = orders
        .iter()
        .enumerate()
        .map(|(n, (pk, region, customer, sku))| {
            serde_json::json!({
                "eventID": n.to_string(),
                "eventName": "INSERT",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:111122223333:table/{table}/stream/2026-12-07T00:00:00.000"),
                "dynamodb": {
                    "Keys": {"pk": {"S": pk}},
                    "NewImage": {"pk": {"S": pk}, "region": {"S": region}, "customer": {"S": customer}, "sku": {"S": sku}},
                    "SequenceNumber": format!("{}", 100_000_000_000_000_000_000u128 + n as u128),
                    "SizeBytes": 60,
                    "StreamViewType": "NEW_AND_OLD_IMAGES"
                }
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

pub fn jsonl_sink(dir: &Path) -> String {
    format!(
        "[[sinks]]\ntype = \"jsonl\"\ndir = \"{}\"\n[sinks.batch]\nmax_age = \"20ms\"\n",
        dir.display()
    )
}

/// The new image of every line of the JSON Lines files under `dir`, in order.
pub fn jsonl_images(dir: &Path) -> Vec<Item> {
    let mut files: Vec<PathBuf> = walk(dir);
    files.sort();
    files
        .iter()
        .flat_map(|file| {
            std::fs::read_to_string(file)
                .expect("read jsonl")
                .lines()
                .map(|line| {
                    let event: serde_json::Value =
                        serde_json::from_str(line).expect("a change line");
                    dynamo_cdc::decode::decode_item(&event["new_image"].to_string())
                        .expect("an image")
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// An event file of `changes` to the orders table and a pipeline config
/// joining them (customers with a `budget_mb` memory budget) into a JSON
/// Lines sink at `out`.
pub fn orders_replay(
    dir: &Path,
    changes: &[Order],
    budget_mb: u64,
    out: &Path,
) -> (PathBuf, PathBuf) {
    let input = dir.join("orders-event.json");
    std::fs::write(&input, lambda_event("orders", changes)).expect("event");
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n\n{}[[tables]]\nname = \"orders\"\n{ORDERS_JOINS}\n\n{}",
            dir.join("state").display(),
            dimensions_config(dir, budget_mb),
            jsonl_sink(out)
        ),
    )
    .expect("config");
    (input, config)
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn replay(config: &Path, table: &str, input: &Path) -> std::process::Output {
    command(&[
        "replay",
        "--config",
        &config.display().to_string(),
        "--table",
        table,
        &input.display().to_string(),
    ])
    .output()
    .expect("replay")
}

pub async fn put_order(client: &aws_sdk_dynamodb::Client, table: &str, order: &Order) {
    use aws_sdk_dynamodb::types::AttributeValue as Av;
    client
        .put_item()
        .table_name(table)
        .item("pk", Av::S(order.0.clone()))
        .item("sk", Av::N("1".into()))
        .item("region", Av::S(order.1.clone()))
        .item("customer", Av::S(order.2.clone()))
        .item("sku", Av::S(order.3.clone()))
        .send()
        .await
        .expect("put an order");
}
