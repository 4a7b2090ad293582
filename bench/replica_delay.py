"""How long an event ingested through one `souk serve` replica takes to change the page
another replica serves, both over one PostgreSQL database.

Setup: a generated shop stored in PostgreSQL (`souk gen`, `souk train` with
SOUK__STORE__URL), then two replicas, A and B, each with its own data directory. Each trial
picks a shopper, reads the first item of their recommendations on B, posts a `dislike` of
that item through A (timed from A's acknowledgement) and polls B's page (20 items) every
2 ms until that item has left it — a disliked item is excluded, nothing else takes a first
item off a top 20 — the delay. Trials run on an idle pair, then while other clients post
batches of 1,000 views by other shoppers to A without pause (the load B has to tail).
Prints p50 / p90 / p99 / max per phase; standard library only.

    python3 bench/replica_delay.py --souk target/release/souk \\
        --postgres postgres://USER@127.0.0.1:5432/postgres --work-dir /tmp/replicas --json
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request


def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def recommended(base, user):
    page = call(f"{base}/v1/users/{user}/recommendations?n=20")
    return [item["id"] for item in page.get("items") or []]


def start(souk, data_dir, env):
    process = subprocess.Popen([souk, "--data-dir", data_dir, "serve", "--listen", "127.0.0.1:0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    prefix = "souk: listening on "
    if not line.startswith(prefix):
        process.kill()
        sys.exit(f"{data_dir}: the replica did not start: {line!r}")
    return process, line[len(prefix):].strip()


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def trials(a, b, users, n, rng, label):
    delays = []
    for k in range(n):
        user = rng.choice(users)
        page = recommended(b, user)
        if not page:
            continue
        item = page[0]
        event = {"id": f"delay-{label}-{k}-{rng.random()}", "type": "dislike", "user": user, "item": item,
                 "timestamp": int(time.time() * 1000)}
        call(f"{a}/v1/events", [event])
        acknowledged = time.perf_counter()
        while item in recommended(b, user):
            if time.perf_counter() - acknowledged > 30:
                sys.exit(f"trial {k}: the dislike of {item} by {user} did not reach replica B in 30 s")
            time.sleep(0.002)
        delays.append(1000 * (time.perf_counter() - acknowledged))
    return delays


def load(a, items, stop, counter, seed):
    rng = random.Random(seed)
    k = 0
    while not stop.is_set():
        batch = [{"id": f"load-{seed}-{k}-{j}", "type": "view", "user": f"loader{rng.randrange(5000)}",
                  "item": rng.choice(items),
                  "timestamp": int(time.time() * 1000)} for j in range(1000)]
        call(f"{a}/v1/events", batch)
        counter[seed] += len(batch)
        k += 1


def summary(delays):
    return {"trials": len(delays), "p50_ms": percentile(delays, 0.5), "p90_ms": percentile(delays, 0.9),
            "p99_ms": percentile(delays, 0.99), "max_ms": max(delays)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--souk", required=True)
    parser.add_argument("--postgres", required=True, help="a database URL; the shop is written into it")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--load-clients", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    env = dict(os.environ, SOUK__STORE__URL=args.postgres, SOUK__LOG__LEVEL="warn", SOUK_MODEL_FETCH="off")
    setup = os.path.join(args.work_dir, "setup")
    subprocess.run([args.souk, "--data-dir", setup, "gen", "--items", "2000", "--users", "500", "--events", "50000"],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([args.souk, "--data-dir", setup, "train"], env=env, check=True, stdout=subprocess.DEVNULL)
    a_process, a = start(args.souk, os.path.join(args.work_dir, "a"), env)
    b_process, b = start(args.souk, os.path.join(args.work_dir, "b"), env)
    try:
        users = [f"u{k:06d}" for k in range(500)]
        items = [f"i{k:06d}" for k in range(2000)]
        rng = random.Random(42)
        report = {"idle": summary(trials(a, b, users, args.trials, rng, "idle"))}
        stop, counter = threading.Event(), {}
        threads = []
        for seed in range(args.load_clients):
            counter[seed] = 0
            thread = threading.Thread(target=load, args=(a, items, stop, counter, seed), daemon=True)
            thread.start()
            threads.append(thread)
        started = time.perf_counter()
        loaded = trials(a, b, users, args.trials, rng, "load")
        seconds = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join()
        report["under_load"] = summary(loaded)
        report["under_load"]["ingest_events_per_second"] = sum(counter.values()) / seconds
        report["under_load"]["load_clients"] = args.load_clients
    finally:
        for process in (a_process, b_process):
            process.kill()
            process.wait()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for phase, figures in report.items():
            print(phase, figures)


if __name__ == "__main__":
    main()
