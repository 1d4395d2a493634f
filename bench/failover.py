"""Failover time after SIGKILL on a lease table (run by bench/failover.sh).

Two `dynamo-cdc run` workers share TABLES tables through a lease table.
Each round waits until the leases are spread evenly, watches the older
worker's leases for one renew period and a random part of another (so that
kills land anywhere in its renew cycle, and its last renewal is known to
20 ms), kills it with SIGKILL, and polls the lease table (strongly
consistent Scans, every 20 ms) until the survivor holds every lease the
victim held, and until the victim's heartbeat item is gone. A fresh worker
then joins. Prints one Markdown table row per kill and a summary.
"""

import argparse
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid

import boto3

HEARTBEAT = "dcdc-worker#"
SNAPSHOT = "dcdc-snapshot#"


def seconds(text):
    """`10s`, `1500ms` or `2m` as seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


class Fleet:
    def __init__(self, args):
        self.args = args
        self.ddb = boto3.client(
            "dynamodb",
            endpoint_url=args.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        run = uuid.uuid4().hex[:8]
        self.tables = [f"failover_{run}_{i}" for i in range(args.tables)]
        self.lease_table = f"failover_leases_{run}"
        self.config = os.path.join(args.work, "pipeline.toml")
        self.workers = {}
        self.started = 0

    def create_tables(self):
        for name in self.tables:
            self.ddb.create_table(
                TableName=name,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            self.ddb.put_item(TableName=name, Item={"pk": {"S": "seed"}})
        sections = "".join(f'[[tables]]\nname = "{name}"\n\n' for name in self.tables)
        with open(self.config, "w") as f:
            f.write(
                f'state_dir = "${{WORKER_STATE}}"\n\n[aws]\nregion = "us-east-1"\n'
                f'endpoint_url = "{self.args.endpoint}"\n\n[coordinator]\nmode = "lease_table"\n'
                f'lease_table = "{self.lease_table}"\nworker_id = "${{WORKER_ID}}"\n'
                f'lease_duration = "{self.args.lease}"\n'
                f'handover_check_interval = "{self.args.checks}"\n\n'
                f'[source]\ndiscovery_interval = "5s"\n\n{sections}'
                f'[[sinks]]\ntype = "jsonl"\ndir = "{self.args.work}/out-${{WORKER_ID}}"\n'
            )

    def start(self):
        self.started += 1
        worker = f"worker-{self.started:02d}"
        env = dict(os.environ, WORKER_ID=worker, WORKER_STATE=f"{self.args.work}/state-{worker}",
                   RUST_LOG="info")
        log = open(os.path.join(self.args.work, f"{worker}.log"), "w")
        self.workers[worker] = subprocess.Popen(
            [self.args.bin, "run", "--config", self.config],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
        return worker

    def scan(self):
        items, start = [], None
        while True:
            request = {"TableName": self.lease_table, "ConsistentRead": True}
            if start:
                request["ExclusiveStartKey"] = start
            try:
                page = self.ddb.scan(**request)
            except self.ddb.exceptions.ResourceNotFoundException:
                return []
            items.extend(page.get("Items", []))
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    @staticmethod
    def owners(items):
        return {
            item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S")
            for item in items
            if not item["leaseKey"]["S"].startswith((HEARTBEAT, SNAPSHOT))
        }

    @staticmethod
    def beats(items):
        return {
            item["leaseKey"]["S"][len(HEARTBEAT):]
            for item in items
            if item["leaseKey"]["S"].startswith(HEARTBEAT)
        }

    def wait_balanced(self, timeout=180.0):
        """Until every lease is held and each worker holds its share."""
        deadline = time.monotonic() + timeout
        share = len(self.tables) // len(self.workers)
        while time.monotonic() < deadline:
            owners = self.owners(self.scan())
            counts = [sum(1 for o in owners.values() if o == w) for w in self.workers]
            if len(owners) == len(self.tables) and all(c >= share for c in counts) \
                    and sum(counts) == len(self.tables):
                return owners
            time.sleep(0.2)
        raise SystemExit(f"the fleet did not balance within {timeout:.0f} s (logs in {self.args.work})")

    @staticmethod
    def counters(items, keys):
        return {
            item["leaseKey"]["S"]: item["leaseCounter"]["N"]
            for item in items
            if item["leaseKey"]["S"] in keys
        }

    def last_renewal(self, keys, wait):
        """Polls for `wait` seconds; when the victim's leases last changed."""
        seen, changed = None, None
        end = time.monotonic() + wait
        while time.monotonic() < end:
            counters = self.counters(self.scan(), keys)
            if counters != seen:
                seen, changed = counters, time.monotonic()
            time.sleep(0.02)
        return changed

    def kill_one(self, renew_period):
        owners = self.wait_balanced()
        victim = sorted(self.workers)[0]
        survivor = [w for w in self.workers if w != victim][0]
        held = [key for key, owner in owners.items() if owner == victim]
        # A random moment of the victim's renew cycle (at least one full
        # cycle watched, so that its last renewal is known).
        renewed = self.last_renewal(set(held), renew_period + random.uniform(0.0, renew_period))
        process = self.workers.pop(victim)
        killed = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait()
        since_renewal = killed - renewed if renewed else None
        taken = gone = None
        # A build without heartbeat removal never deletes it: wait 3 leases at most.
        limit = 3.0 * renew_period * 3.0
        while time.monotonic() - killed < limit and (taken is None or gone is None):
            items = self.scan()
            now = time.monotonic() - killed
            owners = self.owners(items)
            if taken is None and all(owners.get(key) == survivor for key in held):
                taken = now
            if gone is None and victim not in self.beats(items):
                gone = now
            time.sleep(0.02)
        return victim, len(held), since_renewal, taken, gone

    def stop(self):
        for process in self.workers.values():
            process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--bin", "--endpoint", "--work", "--lease", "--checks"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--tables", type=int, default=4)
    args = parser.parse_args()
    lease = seconds(args.lease)
    # Stopped from outside: still stop the workers (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    fleet = Fleet(args)
    fleet.create_tables()
    fleet.start()
    fleet.start()
    results = []
    try:
        print("| kill | leases moved | killed after its last renewal | every lease held by the survivor after the kill | after its last renewal | dead worker's heartbeat deleted after the kill |")
        print("|---|---|---|---|---|---|")
        for number in range(1, args.kills + 1):
            victim, held, since, taken, gone = fleet.kill_one(lease / 3.0)
            results.append(taken)
            show = lambda t: f"not within {3 * lease:.0f} s" if t is None else f"{t:.2f} s"
            after_renewal = None if taken is None or since is None else taken + since
            print(f"| {number} ({victim}) | {held} | {show(since)} | {show(taken)} | {show(after_renewal)} | "
                  f"{show(gone)} |", flush=True)
            fleet.start()
    finally:
        fleet.stop()
    moved = [t for t in results if t is not None]
    if moved:
        print(f"\ntake-over after SIGKILL: min {min(moved):.2f} s, median {statistics.median(moved):.2f} s, "
              f"max {max(moved):.2f} s over {len(moved)} kills (lease_duration {args.lease}, "
              f"target <= {lease + 1:.0f} s)")


if __name__ == "__main__":
    main()
