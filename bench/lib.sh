# Shared by the bench scripts (sourced after scripts/lib/servers.sh).

# replay_setup SINK WORK: starts the sink's server when it has one (under
# WORK), writes WORK/SINK.toml replaying table `orders` into it, and sets
# BASELINE_URL to the same server for bench/baseline_replay.py.
# KAFKA_ENVELOPE (debezium, dynamodb, plain) picks the kafka sink's envelope,
# KAFKA_DELIVERY (at_least_once, exactly_once) its delivery.
replay_setup() {
    local sink=${1:?usage: replay_setup SINK WORK} work=${2:?usage: replay_setup SINK WORK}
    local port section
    BASELINE_URL=
    case $sink in
        postgres)
            port=$(free_port)
            start_postgres "$port" "$work/postgres"
            BASELINE_URL="host=127.0.0.1 port=$port user=postgres dbname=postgres"
            section="type = \"postgres\"
url = \"$BASELINE_URL\"
create_table = true" ;;
        clickhouse)
            port=$(free_port)
            start_clickhouse "$port" "$work/clickhouse"
            BASELINE_URL="clickhouse://127.0.0.1:$DCDC_CLICKHOUSE_TCP_PORT"
            section="type = \"clickhouse\"
url = \"http://127.0.0.1:$port\"
compress = false
create_table = true" ;;
        elasticsearch)
            port=$(free_port)
            start_osmem "$port" "$work/osmem.log"
            printf '%s' '{"mappings":{"dynamic":false,"properties":{"pk":{"type":"keyword"},"sk":{"type":"keyword"}}}}' \
                > "$work/index-body.json"
            section="type = \"elasticsearch\"
url = \"http://127.0.0.1:$port\"
create_index = true
index_body_file = \"$work/index-body.json\"" ;;
        kafka)
            port=$(free_port)
            start_tansu "$port" "$work/tansu.log"
            section="type = \"kafka\"
brokers = \"127.0.0.1:$port\"
create_topics = true
partitions = 3
envelope = \"${KAFKA_ENVELOPE:-debezium}\"
delivery = \"${KAFKA_DELIVERY:-at_least_once}\"" ;;
        jsonl) section="type = \"jsonl\"
dir = \"$work/out-jsonl\"" ;;
        sqlite) section="type = \"sqlite\"
path = \"$work/replica.db\"" ;;
        *) echo "unknown sink $sink (jsonl, sqlite, postgres, clickhouse, elasticsearch, kafka)" >&2; return 2 ;;
    esac
    cat > "$work/$sink.toml" <<TOML
state_dir = "$work/state-$sink"
[[tables]]
name = "orders"
[[sinks]]
$section
TOML
}
