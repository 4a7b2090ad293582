#!/usr/bin/env python3
"""Independent check of Souk's ranking metrics with ranx.

Files in this folder:
  train.tsv, test.tsv   a fixed split (user<TAB>item), read by Souk as a split directory
  scores.tsv            user<TAB>item<TAB>score for every user and item: the "model"
  expected_ranx.json    what ranx computes on the same rankings (written by this script)

Rankings: per user, every item that is not one of the user's training items, by score
(scores are distinct within a user and exact in float32, so there are no ties to break).
Relevant items: the user's test items, relevance 1.

  python independent_check.py --generate   rewrite train/test/scores (deterministic LCG)
  python independent_check.py              recompute expected_ranx.json with ranx
"""
import argparse
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
USERS, ITEMS = 30, 50
KS = (5, 10, 20)


def lcg(seed):
    state = seed
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        yield state >> 33


def generate():
    rand = lcg(2024)
    train, test, scores = [], [], []
    for u in range(USERS):
        user = f"u{u:02d}"
        items = list(range(ITEMS))
        for k in range(ITEMS - 1, 0, -1):  # Fisher-Yates
            j = next(rand) % (k + 1)
            items[k], items[j] = items[j], items[k]
        n_test = 1 + next(rand) % 8  # 1..8 test items
        n_train = next(rand) % 11  # 0..10 training items
        test += [(user, f"i{i:02d}") for i in items[:n_test]]
        train += [(user, f"i{i:02d}") for i in items[n_test:n_test + n_train]]
        # A permutation of 1..50 scaled by 1/8: distinct and exact in float32.
        ranks = list(range(1, ITEMS + 1))
        for k in range(ITEMS - 1, 0, -1):
            j = next(rand) % (k + 1)
            ranks[k], ranks[j] = ranks[j], ranks[k]
        scores += [(user, f"i{i:02d}", ranks[i] / 8) for i in range(ITEMS)]
    # Every item must occur in the split so that Souk ranks all 50 of them.
    seen = {i for _, i in train + test}
    missing = [f"i{i:02d}" for i in range(ITEMS) if f"i{i:02d}" not in seen]
    train += [("u00", i) for i in missing if ("u00", i) not in test]
    for name, rows in (("train.tsv", train), ("test.tsv", test)):
        with open(os.path.join(HERE, name), "w") as f:
            f.writelines(f"{u}\t{i}\n" for u, i in rows)
    with open(os.path.join(HERE, "scores.tsv"), "w") as f:
        f.writelines(f"{u}\t{i}\t{s}\n" for u, i, s in scores)


def read(name):
    with open(os.path.join(HERE, name)) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def check():
    from importlib.metadata import version

    from ranx import Qrels, Run, evaluate

    train = {(u, i) for u, i in read("train.tsv")}
    qrels, run = {}, {}
    for u, i in read("test.tsv"):
        if (u, i) not in train:
            qrels.setdefault(u, {})[i] = 1
    for u, i, s in read("scores.tsv"):
        if (u, i) not in train and u in qrels:
            run.setdefault(u, {})[i] = float(s)
    metrics = ["mrr"] + [f"{m}@{k}" for k in KS for m in ("ndcg", "recall", "precision", "hit_rate", "map")]
    values = evaluate(Qrels(qrels), Run(run), metrics, make_comparable=False)
    out = {
        "library": f"ranx {version('ranx')}",
        "users": len(qrels),
        "metrics": {name: float(values[name]) for name in metrics},
    }
    with open(os.path.join(HERE, "expected_ranx.json"), "w") as f:
        json.dump(out, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--generate", action="store_true")
    args = parser.parse_args()
    if args.generate:
        generate()
    check()
