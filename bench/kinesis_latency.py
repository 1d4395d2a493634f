"""Arrival-to-visibility latency through a Kinesis stream (bench/kinesis_latency.sh).

Three parts, run as separate processes so that neither the writer nor the
poller stalls the other on Python's GIL; both stamp with time.monotonic()
(CLOCK_MONOTONIC, one clock for every process on the machine):

    python kinesis_latency.py write ENDPOINT STREAM TABLE RATE SECONDS ARRIVALS
    python kinesis_latency.py poll CLICKHOUSE_URL TABLE TOTAL SEEN WRITER_DONE
    python kinesis_latency.py report ARRIVALS SEEN WARMUP_RECORDS

write: RATE*SECONDS change records in the format DynamoDB writes to a Kinesis
stream (no SequenceNumber, tableName, microsecond creation time; as
kinesis_load.py), PutRecords of RATE/20 records (at most 500) on a steady
clock, up to IN_FLIGHT (default 8) calls at a time. Item i has key
pk = "k%012d" % i and a number attribute seq = i. A record's arrival time is
the writer's clock when the PutRecords call that stored it answered (failed
entries are sent again; theirs is the answer of the call that stored them).
Prints the achieved rate and the writer's own CPU.

poll: every POLL_MS (default 20) ms asks ClickHouse for the seq of the rows
whose key is at or above the lowest seq not yet seen (the zero-padded key
makes that a primary-key range); a seq's visibility time is the clock when
the first query that returned it was sent (it was visible then: a query
reads the parts that exist when it starts). Stops when TOTAL seqs were seen,
or once the file WRITER_DONE exists (the writer has finished) and no new seq
was seen for STALL_S (default 60) s.

report: p50/p90/p99/max of visibility - arrival over the seqs seen, for the
records after the first WARMUP_RECORDS (the steady state: before the first
records arrive the engine polls the idle shards at growing intervals, up to
idle_poll_max, 2 s by default) and for those first records on their own;
PER_SECOND=1 adds a line per second of arrivals.
"""

import array
import http.client
import os
import queue
import resource
import sys
import threading
import time
import urllib.parse

PAD = 12


def key(seq):
    return "k%0*d" % (PAD, seq)


# ~350 bytes of item (DynamoDB JSON), ~700-byte records.
FILLER = "x" * 200


def kinesis_record(seq, table, now_us):
    pk = key(seq)
    data = (
        '{"awsRegion":"us-east-1","eventID":"%032x","eventName":"INSERT","userIdentity":null,'
        '"recordFormat":"application/json","tableName":"%s","dynamodb":{'
        '"ApproximateCreationDateTime":%d,"Keys":{"pk":{"S":"%s"}},'
        '"NewImage":{"pk":{"S":"%s"},"seq":{"N":"%d"},"amount":{"N":"%d.%02d"},'
        '"status":{"S":"%s"},"tags":{"SS":["a","b"]},"note":{"S":"%s"}},'
        '"SizeBytes":%d,"ApproximateCreationDateTimePrecision":"MICROSECOND"},'
        '"eventSource":"aws:dynamodb"}'
        % (seq, table, now_us, pk, pk, seq, seq % 1000, seq % 100,
           ("NEW", "PAID", "SHIPPED")[seq % 3], FILLER, 300)
    )
    return {"Data": data.encode(), "PartitionKey": pk}


def write(endpoint, stream, table, rate, seconds, out_path, done_path=None):
    import boto3
    from botocore.config import Config

    rate, seconds = int(rate), float(seconds)
    total = int(rate * seconds)
    per_call = max(1, min(500, rate // 20))
    in_flight = int(os.environ.get("IN_FLIGHT", "8"))
    config = Config(parameter_validation=False, max_pool_connections=in_flight,
                    retries={"max_attempts": 10, "mode": "standard"})
    clients = queue.Queue()
    for _ in range(in_flight):
        clients.put(boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                                 aws_access_key_id="local", aws_secret_access_key="local",
                                 config=config))
    arrivals = array.array("d", bytes(8 * total))
    slots = threading.BoundedSemaphore(in_flight)
    errors = []
    retried = [0]
    lock = threading.Lock()

    def send(first, count):
        client = clients.get()
        try:
            now_us = int(time.time() * 1e6)
            pending = [(seq, kinesis_record(seq, table, now_us)) for seq in range(first, first + count)]
            while pending:
                answer = client.put_records(StreamName=stream, Records=[r for _, r in pending])
                answered = time.monotonic()
                failed = []
                for (seq, record), result in zip(pending, answer["Records"]):
                    if "ErrorCode" in result:
                        failed.append((seq, record))
                    else:
                        arrivals[seq] = answered
                if failed:
                    with lock:
                        retried[0] += len(failed)
                    time.sleep(0.05)
                pending = failed
        except Exception as error:  # reported after the run
            errors.append(repr(error))
        finally:
            clients.put(client)
            slots.release()

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    behind_max = 0.0
    threads = []
    for index, first in enumerate(range(0, total, per_call)):
        due = started + first / rate
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        slots.acquire()
        behind_max = max(behind_max, time.monotonic() - due)
        thread = threading.Thread(target=send, args=(first, min(per_call, total - first)))
        thread.start()
        threads.append(thread)
        if len(threads) > 4 * in_flight:
            threads = [t for t in threads if t.is_alive()]
    for thread in threads:
        thread.join()
    finished = time.monotonic()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    if errors:
        sys.exit(f"writer: {len(errors)} PutRecords calls failed, first: {errors[0]}")
    with open(out_path, "wb") as out:
        arrivals.tofile(out)
    if done_path:
        open(done_path, "w").close()
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    took = finished - started
    print(f"writer: {total} records in {took:.1f} s = {total / took:,.0f}/s achieved (asked {rate:,}/s; "
          f"PutRecords of {per_call}, {in_flight} in flight; most behind schedule {behind_max * 1000:.0f} ms; "
          f"{retried[0]} entries sent again); writer CPU {cpu:.1f} s ({cpu / took * 100:.0f} % of a core)",
          flush=True)


def poll(url, table, total, out_path, done_path):
    total = int(total)
    interval = float(os.environ.get("POLL_MS", "20")) / 1000
    stall = float(os.environ.get("STALL_S", "60"))
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    seen = array.array("d", bytes(8 * total))
    count, low = 0, 0
    last_new = time.monotonic()
    queries, returned = 0, 0
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    while count < total:
        asked = time.monotonic()
        query = f"SELECT seq FROM {table} WHERE pk >= '{key(low)}' FORMAT TabSeparated"
        try:
            conn.request("POST", "/", body=query.encode())
            answer = conn.getresponse()
            body = answer.read()
            ok = answer.status == 200
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            ok = False
        queries += 1
        if ok:  # before the engine creates the table: an error, nothing yet
            lines = body.split()
            returned += len(lines)
            for line in lines:
                seq = int(line)
                if seq < total and not seen[seq]:
                    seen[seq] = asked
                    count += 1
                    last_new = asked
            while low < total and seen[low]:
                low += 1
        now = time.monotonic()
        if now - last_new > stall and os.path.exists(done_path):
            break
        if asked + interval > now:
            time.sleep(asked + interval - now)
    took = time.monotonic() - started
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    with open(out_path, "wb") as out:
        seen.tofile(out)
    print(f"poller: {count} of {total} rows seen; {queries} queries in {took:.1f} s "
          f"({queries / took:.0f}/s, {returned / max(queries, 1):,.0f} rows each on average); "
          f"poller CPU {cpu:.1f} s", flush=True)


def percentiles(latencies):
    latencies = sorted(latencies)

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return (f"p50 {pct(50):.0f} ms, p90 {pct(90):.0f} ms, p99 {pct(99):.0f} ms, "
            f"max {latencies[-1] * 1000:.0f} ms")


def report(arrivals_path, seen_path, warmup):
    arrivals, seen = array.array("d"), array.array("d")
    with open(arrivals_path, "rb") as f:
        arrivals.frombytes(f.read())
    with open(seen_path, "rb") as f:
        seen.frombytes(f.read())
    warmup = int(warmup)
    pairs = [(a, s) for a, s in zip(arrivals, seen) if a and s]
    missing = sum(1 for s in seen if not s)
    steady = [s - a for a, s in zip(arrivals[warmup:], seen[warmup:]) if a and s]
    if not steady:
        sys.exit("report: no row after the warm-up was seen")
    early = sum(1 for v in steady if v < 0)
    print(f"arrival->visible over {len(steady):,} records after the warm-up: {percentiles(steady)}"
          + (f"; {missing} never seen" if missing else "")
          + (f"; {early} seen before their PutRecords answered" if early else ""))
    if warmup:
        print(f"  (the first {warmup:,} records, the warm-up: {percentiles([s - a for a, s in zip(arrivals[:warmup], seen[:warmup]) if a and s])})")
    if os.environ.get("PER_SECOND") == "1":
        start = min(a for a, _ in pairs)
        by_second = {}
        for a, s in pairs:
            by_second.setdefault(int(a - start), []).append(s - a)
        for second in sorted(by_second):
            print(f"  second {second:3d}: {len(by_second[second]):6,} records, {percentiles(by_second[second])}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"write": write, "poll": poll, "report": report}[command](*args)
