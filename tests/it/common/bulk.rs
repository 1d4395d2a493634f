//! Large tables for snapshot tests: bulk loading with BatchWriteItem, and a
//! writer that updates, deletes and inserts while a snapshot runs.

use aws_sdk_dynamodb::types::{AttributeValue as Sdk, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;

use dynamo_cdc::model::{AttributeValue as V, Item, Number};

use super::values::to_sdk_item;

/// A small item (~150 bytes) with a string, a 38-digit number, binary, a
/// string set and a boolean: large tables stay light for DynamoDB Local.
pub fn small_item(rng: &mut fastrand::Rng, pk: &str, sk: &str) -> Item {
    let number = |text: String| V::N(Number::parse(&text).expect("generated number"));
    Item::from([
        ("pk".to_owned(), V::S(pk.to_owned())),
        ("sk".to_owned(), number(sk.to_owned())),
        ("s".to_owned(), V::S(format!("value-{}", rng.u32(..)))),
        (
            "big".to_owned(),
            number(format!(
                "{}{:019}{:018}",
                rng.u8(1..10),
                rng.u64(..10u64.pow(19)),
                rng.u64(..10u64.pow(18))
            )),
        ),
        ("bin".to_owned(), V::B((0..8).map(|_| rng.u8(..)).collect())),
        (
            "tags".to_owned(),
            V::Ss(vec![format!("a{}", rng.u8(..)), "z".to_owned()]),
        ),
        ("flag".to_owned(), V::Bool(rng.bool())),
    ])
}

/// Deletes a test's table so DynamoDB Local frees its memory (best effort).
pub async fn drop_table(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
}

/// The key of item `index` of a bulk table.
pub fn key(index: usize) -> (String, String) {
    (format!("item-{index:06}"), (index % 7).to_string())
}

/// Loads items `0..count` (random values of every type) with `writers`
/// concurrent BatchWriteItem loops of 25 items.
pub async fn load(client: &Client, table: &str, count: usize, writers: usize) {
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let client = client.clone();
        let table = table.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(writer as u64);
            let mine: Vec<usize> = (0..count).filter(|i| i % writers == writer).collect();
            for batch in mine.chunks(25) {
                let mut requests: Vec<WriteRequest> = batch
                    .iter()
                    .map(|&i| {
                        let (pk, sk) = key(i);
                        let item = to_sdk_item(&small_item(&mut rng, &pk, &sk));
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(item))
                                    .build()
                                    .expect("put request"),
                            )
                            .build()
                    })
                    .collect();
                while !requests.is_empty() {
                    let output = client
                        .batch_write_item()
                        .request_items(&table, requests)
                        .send()
                        .await
                        .expect("batch write");
                    requests = output
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&table))
                        .unwrap_or_default();
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("loader task");
    }
}

/// `ops` random updates, deletes and inserts over items `0..count + count / 10`
/// (so some are new), one writer; returns how many of each it did.
pub async fn churn(
    client: &Client,
    table: &str,
    count: usize,
    ops: usize,
    seed: u64,
) -> [usize; 3] {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut done = [0usize; 3];
    for _ in 0..ops {
        let index = rng.usize(..count + count / 10);
        let (pk, sk) = key(index);
        let keys = [
            ("pk".to_owned(), Sdk::S(pk.clone())),
            ("sk".to_owned(), Sdk::N(sk.clone())),
        ];
        match rng.u8(0..3) {
            0 => {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(keys.into_iter().collect()))
                    .update_expression("SET churned = :n")
                    .expression_attribute_values(":n", Sdk::N(rng.u32(..).to_string()))
                    .send()
                    .await
                    .expect("update");
                done[0] += 1;
            }
            1 => {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(keys.into_iter().collect()))
                    .send()
                    .await
                    .expect("delete");
                done[1] += 1;
            }
            _ => {
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(to_sdk_item(&small_item(&mut rng, &pk, &sk))))
                    .send()
                    .await
                    .expect("put");
                done[2] += 1;
            }
        }
    }
    done
}
