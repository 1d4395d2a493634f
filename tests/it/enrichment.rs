//! Enrichment joins at scale and per table: a composite-key CSV dimension
//! larger than the in-memory budget joined from its disk index in
//! `replay` (and reused on the next start), per-table joins sharing one
//! dimension in a snapshot and the stream (`run`) and in `load`, an index
//! swapped whole while changes stream, and bad dimension files refused at
//! start with the file and line, before any change is taken.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engine::{command, run_until_caught_up, sqlite_sink, write_config};
use common::enrichment::{
    dimensions_config, joined, jsonl_images, jsonl_sink, lambda_event, order_item, orders,
    orders_replay, put_order, replay, stderr, walk, write_dimensions, Order, ORDERS_JOINS,
    RETURNS_JOINS,
};
use dynamo_cdc::model::{AttributeValue, Item};

#[test]
fn a_dimension_larger_than_the_memory_budget_joins_from_its_disk_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 3 regions × 40,000 ids, two thirds kept: 80,000 rows, about 2.4 MB of
    // CSV against a 1 MiB in-memory budget.
    let dimensions = write_dimensions(dir.path(), 40_000);
    let changes = orders(4_000, 40_000, 7);
    let out = dir.path().join("out");
    let (input, config) = orders_replay(dir.path(), &changes, 1, &out);
    let first = replay(&config, "orders", &input);
    assert!(first.status.success(), "{}", stderr(&first));
    let indexes = dir.path().join("state/dimensions/customers");
    let built: Vec<PathBuf> = walk(&indexes)
        .into_iter()
        .filter(|p| p.ends_with("data.mdb"))
        .collect();
    assert_eq!(
        built.len(),
        1,
        "one disk index of customers: {built:?}\n{}",
        stderr(&first)
    );
    assert!(
        !dir.path().join("state/dimensions/products").exists(),
        "products fits the budget and stays in memory"
    );
    let images = jsonl_images(&out);
    assert_eq!(images.len(), changes.len());
    for (order, image) in changes.iter().zip(&images) {
        assert_eq!(image, &joined(order_item(order), &dimensions, true, true));
    }
    let matched = images.iter().filter(|i| i.contains_key("c_name")).count();
    assert!(
        matched > 2_000 && matched < 4_000,
        "{matched} of 4000 matched"
    );
    assert!(images.iter().any(|i| i
        .get("c_name")
        .is_some_and(|n| matches!(n, AttributeValue::S(s) if s.contains('\n')))));

    // The next start reuses the index: the file did not change.
    let again = replay(&config, "orders", &input);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("dimension index reused"),
        "{}",
        stderr(&again)
    );
    assert_eq!(jsonl_images(&out).len(), 2 * changes.len());
}

#[test]
fn bad_dimension_files_stop_the_start_naming_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_dimensions(dir.path(), 30);
    let out = dir.path().join("out");
    let (input, config) = orders_replay(dir.path(), &orders(20, 30, 3), 1, &out);
    let customers = dir.path().join("customers.csv");
    let original = std::fs::read_to_string(&customers).expect("read");
    let cases = [
        (
            format!("{original}eu,c0,Again,1\n"),
            "duplicate key \"eu/c0\"",
        ),
        (
            original.replace("region,id", "area,id"),
            "no column \"region\"",
        ),
        (format!("{original}us,c99,\"cut"), "truncated file"),
    ];
    for (text, expected) in cases {
        std::fs::write(&customers, text).expect("write");
        let output = replay(&config, "orders", &input);
        let message = stderr(&output);
        assert!(
            !output.status.success(),
            "a bad dimension started: {message}"
        );
        assert!(
            message.contains("customers.csv") && message.contains(expected),
            "{message}"
        );
        assert!(
            jsonl_images(&out).is_empty(),
            "nothing was taken before the start failed"
        );
    }
    std::fs::remove_file(&customers).expect("remove");
    let output = replay(&config, "orders", &input);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("customers.csv"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn per_table_joins_share_a_dimension_in_the_snapshot_and_the_stream() {
    let client = common::client().await;
    let orders_table = common::unique_table("orders");
    let returns_table = common::unique_table("returns");
    common::create_table(&client, &orders_table).await;
    common::create_table(&client, &returns_table).await;
    let changes = orders(60, 30, 11);
    for order in &changes[..30] {
        put_order(&client, &orders_table, order).await;
        put_order(&client, &returns_table, order).await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let dimensions = write_dimensions(dir.path(), 30);
    let replica = dir.path().join("replica.db");
    let config = write_config(
        dir.path(),
        &[&orders_table, &returns_table],
        "",
        &format!(
            "{}{}",
            dimensions_config(dir.path(), 64),
            sqlite_sink(&replica)
        ),
    );
    for (table, joins) in [
        (&orders_table, ORDERS_JOINS),
        (&returns_table, RETURNS_JOINS),
    ] {
        common::engine::set_table_option(
            &config,
            table,
            &format!("snapshot = \"initial\"\n{joins}"),
        );
    }
    let first = config.clone();
    tokio::task::spawn_blocking(move || run_until_caught_up(&first))
        .await
        .expect("snapshot run");
    for order in &changes[30..] {
        put_order(&client, &orders_table, order).await;
        put_order(&client, &returns_table, order).await;
    }
    tokio::task::spawn_blocking(move || run_until_caught_up(&config))
        .await
        .expect("stream run");
    for (table, products, tier) in [(&orders_table, true, true), (&returns_table, false, false)] {
        let expected: BTreeMap<_, _> = common::scan(&client, table)
            .await
            .into_iter()
            .map(|(key, item)| (key, joined(item, &dimensions, products, tier)))
            .collect();
        assert!(expected.values().any(|i| i.contains_key("c_name")));
        assert!(expected.values().any(|i| !i.contains_key("c_name")));
        common::assert_same(&expected, &common::replica(&replica, table));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reload_swaps_the_whole_index_while_changes_stream() {
    let client = common::client().await;
    let table = common::unique_table("reload");
    common::create_table(&client, &table).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let dimension = dir.path().join("versions.jsonl");
    let write_version = |version: u32| {
        // 50 rows the changes join, and 30,000 more so that a build takes
        // a while and changes keep streaming during it.
        let text: String = (0..50)
            .map(|i| format!("c{i}"))
            .chain((0..30_000).map(|i| format!("filler{i}")))
            .map(|id| {
                let i = id.trim_start_matches('c');
                format!("{{\"id\": \"{id}\", \"version\": {version}, \"a\": \"{version}-a{i}\", \"b\": \"{version}-b{i}\"}}\n")
            })
            .collect();
        // Written aside and renamed: the file itself is never half-written.
        let aside = dir.path().join("versions.jsonl.new");
        std::fs::write(&aside, text).expect("write the dimension");
        std::fs::rename(&aside, &dimension).expect("replace the dimension");
    };
    write_version(1);
    let out = dir.path().join("out");
    let config = write_config(
        dir.path(),
        &[&table],
        "",
        &format!(
            "[[dimensions]]\nname = \"versions\"\npath = \"{}\"\nkey = \"id\"\ncolumns = [\"version\", \"a\", \"b\"]\nmode = \"disk\"\nreload_interval = \"100ms\"\n\n{}",
            dimension.display(),
            jsonl_sink(&out)
        ),
    );
    common::engine::set_table_option(
        &config,
        &table,
        "enrich = [{ dimension = \"versions\", on = \"customer\" }]",
    );
    let _engine = common::engine::spawn(&config, &dir.path().join("engine.log"));
    let mut written = 0usize;
    let mut put_some = |count: usize| {
        let orders: Vec<Order> = (written..written + count)
            .map(|n| {
                (
                    format!("o{n}"),
                    "eu".into(),
                    format!("c{}", n % 50),
                    "p1".into(),
                )
            })
            .collect();
        written += count;
        orders
    };
    let versions_seen = |out: &Path| -> Vec<String> {
        jsonl_images(out)
            .iter()
            .map(|image| match image.get("version") {
                Some(AttributeValue::N(n)) => n.as_str().to_owned(),
                other => panic!("an unjoined change: {other:?} in {image:?}"),
            })
            .collect()
    };
    for order in put_some(40) {
        put_order(&client, &table, &order).await;
    }
    common::wait_for_async(
        "changes joined with the first version",
        Duration::from_secs(60),
        || {
            let out = out.clone();
            async move { versions_seen(&out).len() >= 40 }
        },
    )
    .await;
    write_version(2);
    // Changes keep streaming while the new index is built and swapped in.
    let mut rounds = 0;
    loop {
        for order in put_some(10) {
            put_order(&client, &table, &order).await;
        }
        rounds += 1;
        if versions_seen(&out).iter().any(|v| v == "2") || rounds > 600 {
            break;
        }
    }
    for order in put_some(20) {
        put_order(&client, &table, &order).await;
    }
    let total = written;
    common::wait_for_async("every change written", Duration::from_secs(60), || {
        let out = out.clone();
        async move { jsonl_images(&out).len() >= total }
    })
    .await;
    let images = jsonl_images(&out);
    let versions: Vec<&str> = images
        .iter()
        .map(|image| {
            let version = match image.get("version") {
                Some(AttributeValue::N(n)) => n.as_str(),
                other => panic!("unjoined: {other:?}"),
            };
            let AttributeValue::S(customer) = &image["customer"] else {
                panic!("customer");
            };
            let i = customer.trim_start_matches('c');
            // Every change carries one version's row whole.
            assert_eq!(
                image["a"],
                AttributeValue::S(format!("{version}-a{i}")),
                "{image:?}"
            );
            assert_eq!(
                image["b"],
                AttributeValue::S(format!("{version}-b{i}")),
                "{image:?}"
            );
            version
        })
        .collect();
    let first_new = versions
        .iter()
        .position(|v| *v == "2")
        .expect("the new version reached the sink");
    eprintln!(
        "{} changes: {} joined with the first version, then {} with the second",
        versions.len(),
        first_new,
        versions.len() - first_new
    );
    assert!(versions[..first_new].iter().all(|v| *v == "1"));
    assert!(
        versions[first_new..].iter().all(|v| *v == "2"),
        "no change went back to the old index: {versions:?}"
    );
    // The replaced index is removed once the new one is in place.
    let indexes = dir.path().join("state/dimensions/versions");
    common::wait_for("one index left", Duration::from_secs(10), || {
        std::fs::read_dir(&indexes)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("index-"))
                    .count()
                    == 1
            })
            .unwrap_or(false)
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn the_loader_joins_each_table_with_its_own_joins() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dimensions = write_dimensions(dir.path(), 30);
    let bucket = format!("enrich-{}", std::process::id());
    common::moto::create_bucket(&bucket).await;
    let sqs = common::moto::sqs();
    let queue_url = sqs
        .create_queue()
        .queue_name(format!(
            "enrich-{}-{}",
            std::process::id(),
            fastrand::u32(..)
        ))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let mut expected = Vec::new();
    for (table, products, tier, seed) in [("orders", true, true, 5), ("returns", false, false, 6)] {
        // Change lines as the engine's S3 sink lands them: replayed into a
        // JSON Lines sink without joins, then gzipped.
        let changes: Vec<Order> = orders(40, 30, seed)
            .into_iter()
            .map(|(pk, region, customer, sku)| (format!("{table}-{pk}"), region, customer, sku))
            .collect();
        let input = dir.path().join(format!("{table}.json"));
        std::fs::write(&input, lambda_event(table, &changes)).expect("event");
        let landed = dir.path().join(format!("landed-{table}"));
        let config = dir.path().join(format!("land-{table}.toml"));
        std::fs::write(
            &config,
            format!(
                "state_dir = \"{}\"\n\n[[tables]]\nname = \"{table}\"\n\n{}",
                dir.path().join(format!("land-state-{table}")).display(),
                jsonl_sink(&landed)
            ),
        )
        .expect("config");
        let output = replay(&config, table, &input);
        assert!(output.status.success(), "{}", stderr(&output));
        let lines: String = walk(&landed)
            .iter()
            .map(|f| std::fs::read_to_string(f).expect("read"))
            .collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(lines.as_bytes()).expect("gzip");
        let key = format!("{table}/part-0.jsonl.gz");
        common::moto::put_object(&bucket, &key, &gz.finish().expect("gzip")).await;
        let notice = serde_json::json!({
            "bucket": bucket, "key": key, "table": table, "shard": "shardId-0",
            "records": changes.len(), "first_sequence": "1", "last_sequence": "2", "format": "jsonl.gz"
        });
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(notice.to_string())
            .send()
            .await
            .expect("send notice");
        expected.extend(
            changes
                .iter()
                .map(|o| joined(order_item(o), &dimensions, products, tier)),
        );
    }
    let out = dir.path().join("loaded");
    let keys = "keys = [{ name = \"pk\", type = \"S\" }]";
    let config = dir.path().join("loader.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"{}\"\n\n[aws]\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\n[queue]\nurl = \"{queue_url}\"\nwait_time = \"1s\"\n\n{}\
             [[tables]]\nname = \"orders\"\n{keys}\n{ORDERS_JOINS}\n\n[[tables]]\nname = \"returns\"\n{keys}\n{RETURNS_JOINS}\n\n{}",
            dir.path().join("loader-state").display(),
            common::moto::url(),
            dimensions_config(dir.path(), 64),
            jsonl_sink(&out)
        ),
    )
    .expect("loader config");
    let output = tokio::task::spawn_blocking(move || {
        command(&[
            "load",
            "--config",
            &config.display().to_string(),
            "--exit-when-idle",
        ])
        .output()
        .expect("run the loader")
    })
    .await
    .expect("loader");
    assert!(output.status.success(), "{}", stderr(&output));
    let mut loaded = jsonl_images(&out);
    let order = |i: &Item| format!("{:?}", i.get("pk"));
    loaded.sort_by_key(order);
    expected.sort_by_key(order);
    assert_eq!(loaded, expected);
}

#[test]
fn filter_test_shows_every_join() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dimensions = write_dimensions(dir.path(), 30);
    let changes = vec![
        (
            "o1".to_owned(),
            "eu".to_owned(),
            "c0".to_owned(),
            "p3".to_owned(),
        ),
        (
            "o2".to_owned(),
            "us".to_owned(),
            "c1".to_owned(),
            "p99".to_owned(),
        ),
    ];
    assert!(dimensions
        .customers
        .contains_key(&("eu".into(), "c0".into())));
    assert!(!dimensions
        .customers
        .contains_key(&("us".into(), "c1".into())));
    let (input, config) = orders_replay(dir.path(), &changes, 64, &dir.path().join("out"));
    let run = |json: bool| {
        let mut args = vec![
            "filter-test",
            "--config",
            config.to_str().expect("path"),
            "--table",
            "orders",
        ];
        if json {
            args.push("--json");
        }
        args.push(input.to_str().expect("path"));
        let output = command(&args).output().expect("filter-test");
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let text = run(false);
    assert!(
        text.contains("join customers: key \"eu/c0\": matched, added c_name, c_tier"),
        "{text}"
    );
    assert!(
        text.contains("join products: key \"p3\": matched, added p_title"),
        "{text}"
    );
    assert!(
        text.contains("join customers: key \"us/c1\": no row, not joined"),
        "{text}"
    );
    assert!(
        text.contains("join products: key \"p99\": no row, not joined"),
        "{text}"
    );
    let first: serde_json::Value =
        serde_json::from_str(run(true).lines().next().expect("a line")).expect("json");
    assert_eq!(first["joins"][0]["dimension"], "customers");
    assert_eq!(first["joins"][0]["matched"], true);
    assert_eq!(first["joins"][1]["added"], serde_json::json!(["p_title"]));
}
