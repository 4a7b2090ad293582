#!/usr/bin/env python3
"""Turn a multi-behaviour folder in the GHCF layout into a split directory for `souk eval`.

Usage:
    python3 bench/ghcf_split.py GHCF_DIR OUT_DIR [--with-carts] [--validation SEED]

GHCF_DIR holds train.txt (purchases), cart.txt (add-to-cart) and test.txt (one held-out
purchase per user), one line per user: `user item item ...` (space-separated ids).
OUT_DIR gets:
    train.tsv   `user<TAB>item<TAB>purchase` per training purchase and, with
                --with-carts, `user<TAB>item<TAB>add_to_cart` per cart pair (purchase
                lines first, so users and items are numbered the same in both variants)
    test.tsv    `user<TAB>item` per test purchase

With --validation SEED the test file is not read at all: per user with at least two
training purchases, one of them (chosen with SEED) becomes the test item and the rest
stay training, so weights and parameters can be chosen without touching the test set.
Carts are kept whole in both cases, as in the papers that published these splits.

Evaluate purchases with carted items still rankable:
    souk eval --split OUT_DIR --target purchase --k 10,20
Cart and purchase weights come from [weights] (e.g. SOUK__WEIGHTS__ADD_TO_CART=2).
Standard library only.
"""

import argparse
import os
import random


def read_lists(path):
    """Per-user item lists of one GHCF file, in file order (duplicates dropped)."""
    lists = {}
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields:
                items = lists.setdefault(fields[0], [])
                items.extend(fields[1:])
    return {user: list(dict.fromkeys(items)) for user, items in lists.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ghcf_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--with-carts", action="store_true", help="add the cart pairs as add_to_cart lines")
    parser.add_argument("--validation", type=int, metavar="SEED",
                        help="hold out one training purchase per user instead of reading test.txt")
    args = parser.parse_args()

    train = read_lists(os.path.join(args.ghcf_dir, "train.txt"))
    if args.validation is None:
        test = read_lists(os.path.join(args.ghcf_dir, "test.txt"))
    else:
        rng = random.Random(args.validation)
        test = {}
        for user in sorted(train, key=int):
            items = train[user]
            if len(items) >= 2:
                held_out = items[rng.randrange(len(items))]
                test[user] = [held_out]
                train[user] = [i for i in items if i != held_out]
    carts = read_lists(os.path.join(args.ghcf_dir, "cart.txt")) if args.with_carts else {}

    os.makedirs(args.out_dir, exist_ok=True)
    counts = {"purchase": 0, "add_to_cart": 0, "test": 0}
    with open(os.path.join(args.out_dir, "train.tsv"), "w") as f:
        for event_type, lists in (("purchase", train), ("add_to_cart", carts)):
            for user in sorted(lists, key=int):
                for item in lists[user]:
                    f.write(f"{user}\t{item}\t{event_type}\n")
                    counts[event_type] += 1
    with open(os.path.join(args.out_dir, "test.tsv"), "w") as f:
        for user in sorted(test, key=int):
            for item in test[user]:
                f.write(f"{user}\t{item}\n")
                counts["test"] += 1
    print(f"{args.out_dir}: {counts['purchase']} purchase, {counts['add_to_cart']} add_to_cart, "
          f"{counts['test']} test lines")


if __name__ == "__main__":
    main()
