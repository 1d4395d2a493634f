//! A random, seeded workload over every DynamoDB type: puts, updates
//! (SET/REMOVE), deletes and re-inserts, by several concurrent writers that
//! each own a disjoint set of keys.

use std::collections::{BTreeSet, HashSet};

use aws_sdk_dynamodb::Client;
use dynamo_cdc::model::{AttributeValue as V, Item, Number};

use super::values::to_sdk;

/// What a workload did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub puts: usize,
    pub updates: usize,
    pub deletes: usize,
    pub reinserts: usize,
}

impl Counts {
    pub fn total(&self) -> usize {
        self.puts + self.updates + self.deletes + self.reinserts
    }
}

fn n(text: &str) -> V {
    V::N(Number::parse(text).expect("generated number"))
}

fn digits(rng: &mut fastrand::Rng, count: usize) -> String {
    let mut text = String::with_capacity(count);
    text.push(char::from(b'1' + rng.u8(0..9)));
    for _ in 1..count {
        text.push(char::from(b'0' + rng.u8(0..10)));
    }
    text
}

fn random_string(rng: &mut fastrand::Rng) -> String {
    if rng.u8(0..6) == 0 {
        return String::new();
    }
    let len = rng.usize(1..24);
    (0..len)
        .map(|_| match rng.u8(0..8) {
            0 => 'é',
            1 => '"',
            2 => '\n',
            3 => '日',
            _ => rng.alphanumeric(),
        })
        .collect()
}

/// A random non-key attribute value by name.
fn random_value(rng: &mut fastrand::Rng, name: &str) -> V {
    match name {
        "s" => V::S(random_string(rng)),
        "big" => n(&format!(
            "{}{}",
            if rng.bool() { "-" } else { "" },
            digits(rng, 38)
        )),
        "dec" => n(&format!("{}.{}", rng.i32(-99_999..99_999), rng.u32(1..999))),
        "tiny" => n("0.00000000000000000000000000000000000001"),
        "bin" => V::B((0..rng.usize(0..16)).map(|_| rng.u8(..)).collect()),
        "flag" => V::Bool(rng.bool()),
        "nothing" => V::Null,
        "tags" => {
            let set: BTreeSet<String> = (0..rng.usize(1..5))
                .map(|i| format!("t{i}-{}", rng.u8(..)))
                .collect();
            V::Ss(set.into_iter().collect())
        }
        "nums" => {
            let set: BTreeSet<i64> = (0..rng.usize(1..5)).map(|_| rng.i64(-1000..1000)).collect();
            V::Ns(
                set.into_iter()
                    .map(|v| Number::parse(&v.to_string()).expect("int"))
                    .collect(),
            )
        }
        "blobs" => {
            let set: BTreeSet<Vec<u8>> = (0..rng.usize(1..4))
                .map(|_| (0..rng.usize(1..6)).map(|_| rng.u8(..)).collect())
                .collect();
            V::Bs(set.into_iter().collect())
        }
        "list" => V::L(vec![
            V::M(Item::new()),
            V::L(Vec::new()),
            V::S(random_string(rng)),
            n(&digits(rng, 38)),
            V::M(Item::from([("inner".to_owned(), V::M(Item::new()))])),
        ]),
        _ => V::M(Item::from([
            ("empty".to_owned(), V::M(Item::new())),
            ("list".to_owned(), V::L(Vec::new())),
            (
                "deep".to_owned(),
                V::M(Item::from([("n".to_owned(), n(&digits(rng, 20)))])),
            ),
            ("blank".to_owned(), V::S(String::new())),
            ("nul".to_owned(), V::Null),
        ])),
    }
}

const ATTRIBUTES: [&str; 13] = [
    "s", "big", "dec", "tiny", "bin", "flag", "nothing", "tags", "nums", "blobs", "list", "doc",
    "s",
];

/// A random item with the given key.
pub fn random_item(rng: &mut fastrand::Rng, pk: &str, sk: &str) -> Item {
    let mut item = Item::from([
        ("pk".to_owned(), V::S(pk.to_owned())),
        ("sk".to_owned(), n(sk)),
    ]);
    for name in ATTRIBUTES {
        if rng.u8(0..4) != 0 {
            item.insert(name.to_owned(), random_value(rng, name));
        }
    }
    item
}

const SORT_KEYS: [&str; 4] = ["1", "-3", "10.5", "12345678901234567890123456789012345678"];

fn key_for(index: usize) -> (String, String) {
    (
        format!("k{:04}", index / SORT_KEYS.len()),
        SORT_KEYS[index % SORT_KEYS.len()].to_owned(),
    )
}

/// Runs `ops` random operations over `keys` keys with `writers` concurrent writers.
pub async fn run(
    client: &Client,
    table: &str,
    keys: usize,
    ops: usize,
    seed: u64,
    writers: usize,
) -> Counts {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let client = client.clone();
        let table = table.to_owned();
        let own: Vec<usize> = (0..keys).filter(|k| k % writers == writer).collect();
        let count = ops / writers + usize::from(writer < ops % writers);
        tasks.push(tokio::spawn(async move {
            write_some(
                &client,
                &table,
                &own,
                count,
                seed.wrapping_add(writer as u64),
            )
            .await
        }));
    }
    let mut total = Counts::default();
    for task in tasks {
        let counts = task.await.expect("writer task");
        total.puts += counts.puts;
        total.updates += counts.updates;
        total.deletes += counts.deletes;
        total.reinserts += counts.reinserts;
    }
    total
}

async fn write_some(client: &Client, table: &str, keys: &[usize], ops: usize, seed: u64) -> Counts {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut live: HashSet<usize> = HashSet::new();
    let mut deleted: HashSet<usize> = HashSet::new();
    let mut counts = Counts::default();
    if keys.is_empty() {
        return counts;
    }
    for _ in 0..ops {
        let index = keys[rng.usize(..keys.len())];
        let (pk, sk) = key_for(index);
        let roll = rng.u8(0..100);
        if live.contains(&index) && roll < 35 {
            update(client, table, &mut rng, &pk, &sk).await;
            counts.updates += 1;
        } else if live.contains(&index) && roll < 60 {
            client
                .delete_item()
                .table_name(table)
                .key("pk", to_sdk(&V::S(pk.clone())))
                .key("sk", to_sdk(&n(&sk)))
                .send()
                .await
                .expect("delete");
            live.remove(&index);
            deleted.insert(index);
            counts.deletes += 1;
        } else {
            let item = random_item(&mut rng, &pk, &sk);
            super::put_item(client, table, &item).await;
            if deleted.remove(&index) {
                counts.reinserts += 1;
            } else {
                counts.puts += 1;
            }
            live.insert(index);
        }
    }
    counts
}

async fn update(client: &Client, table: &str, rng: &mut fastrand::Rng, pk: &str, sk: &str) {
    let set_name = ATTRIBUTES[rng.usize(..ATTRIBUTES.len())];
    let mut remove_name = ATTRIBUTES[rng.usize(..ATTRIBUTES.len())];
    if remove_name == set_name {
        remove_name = "nothing";
    }
    let mut request = client
        .update_item()
        .table_name(table)
        .key("pk", to_sdk(&V::S(pk.to_owned())))
        .key("sk", to_sdk(&n(sk)))
        .expression_attribute_names("#set", set_name)
        .expression_attribute_values(":v", to_sdk(&random_value(rng, set_name)));
    request = if set_name != remove_name {
        request
            .update_expression("SET #set = :v REMOVE #rm")
            .expression_attribute_names("#rm", remove_name)
    } else {
        request.update_expression("SET #set = :v")
    };
    request.send().await.expect("update");
}
