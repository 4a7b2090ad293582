#!/usr/bin/env python3
"""Distinct (user, item) pairs of a `souk gen --out DIR` shop's positive events, written as
OUT/train.tsv (user<TAB>item) for `souk bench train --split OUT` and
`bench/als_vs_implicit.py OUT`: the same binary matrix for both.

Usage: events_to_pairs.py DIR/events.jsonl OUT
"""
import json, os, sys

POSITIVE = {"view", "click", "add_to_cart", "purchase", "favorite", "rating"}


def main():
    events, out = sys.argv[1], sys.argv[2]
    pairs = set()
    with open(events) as f:
        for line in f:
            e = json.loads(line)
            if e.get("type") in POSITIVE and e.get("user") and e.get("item"):
                pairs.add((e["user"], e["item"]))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "train.tsv"), "w") as f:
        for user, item in sorted(pairs):
            f.write(f"{user}\t{item}\n")
    print(json.dumps({"pairs": len(pairs)}))


if __name__ == "__main__":
    main()
