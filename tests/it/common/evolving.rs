//! A workload whose attributes appear and change type as it runs, in
//! phases: integers first, then decimals and new attributes, then text,
//! sets, maps and names no column may carry as they are, then booleans
//! that turn into numbers, numbers beyond any decimal column, and deletes.

use aws_sdk_dynamodb::Client;
use dynamo_cdc::model::{AttributeValue as V, Item, Number};

/// Items per phase (keys `k000`…).
pub const KEYS: usize = 30;
/// Phases of [`write_phase`].
pub const PHASES: usize = 4;

fn n(text: &str) -> V {
    V::N(Number::parse(text).expect("workload number"))
}

/// The item `index` holds after phase `phase`; `None` when it is deleted.
pub fn item(phase: usize, index: usize) -> Option<Item> {
    let mut item = Item::from([
        ("pk".to_owned(), V::S(format!("k{index:03}"))),
        ("sk".to_owned(), n("1")),
        ("qty".to_owned(), n(&index.to_string())),
        ("name".to_owned(), V::S(format!("item {index}"))),
        ("active".to_owned(), V::Bool(index % 2 == 0)),
    ]);
    let mut set = |name: &str, value: V| {
        item.insert(name.to_owned(), value);
    };
    if phase >= 1 {
        if index % 2 == 0 {
            set("qty", n(&format!("{index}.25")));
        }
        set("price", n(&format!("{}.99", index * 3)));
        set("first name", V::S(format!("Ann {index}")));
        set("blob", V::B(vec![0, index as u8, 255]));
        set("note", V::Null);
    }
    if phase >= 2 {
        if index % 3 == 0 {
            set("qty", V::S("many".into()));
        }
        set("tags", V::Ss(vec!["a".into(), format!("t{index}")]));
        let number = |text: &str| Number::parse(text).expect("workload number");
        set(
            "readings",
            V::Ns(vec![number("1.5"), number(&format!("-{}", index + 1))]),
        );
        set(
            "meta",
            V::M(Item::from([
                ("depth".to_owned(), n("2")),
                ("label".to_owned(), V::S("x\ty".into())),
            ])),
        );
        set("_version", V::S("not the sink's".into()));
    }
    if phase >= 3 {
        if index % 4 == 0 {
            set("active", n("1"));
            set("meta", V::S("flat".into()));
        }
        set("huge", n("12345678901234567890123456789012345678"));
        set("tiny", n("1E-130"));
        set(
            "list",
            V::L(vec![n("1"), V::S("two".into()), V::Bool(true)]),
        );
        if index % 7 == 3 {
            return None;
        }
    }
    Some(item)
}

/// Writes every item of `phase` (puts; deletes for items gone in it).
pub async fn write_phase(client: &Client, table: &str, phase: usize) {
    for index in 0..KEYS {
        match item(phase, index) {
            Some(item) => super::put_item(client, table, &item).await,
            None => {
                client
                    .delete_item()
                    .table_name(table)
                    .key(
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("k{index:03}")),
                    )
                    .key("sk", aws_sdk_dynamodb::types::AttributeValue::N("1".into()))
                    .send()
                    .await
                    .expect("delete item");
            }
        }
    }
}
