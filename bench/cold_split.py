"""Write a cold-item split for `souk eval --split DIR`: a seeded random share of the items
is held out whole; their pairs are the test set, every other pair trains, and
`candidates.tsv` lists the held-out items (only they are ranked).

    python3 bench/cold_split.py PAIRS --out DIR [--sep TAB] [--header] [--ucol 0 --icol 1]
        [--cold 0.2] [--seed 42] [--min-value X --vcol N]

PAIRS is any delimited file of user/item pairs: MovieLens-100K's RecBole `ml-100k.inter`
(`--header`), HetRec Last.fm's `user_artists.dat` (`--header`). Ids are written as the
data set writes them (`--user-format` / `--item-format` rewrite them where an importer
names them otherwise), so the data directory's catalog gives the held-out items content.
Test pairs of users without any training pair are dropped (nothing to fold in), as the
`cold-item` protocol does. Standard library only.
"""

import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--sep", default="\t")
    parser.add_argument("--header", action="store_true")
    parser.add_argument("--ucol", type=int, default=0)
    parser.add_argument("--icol", type=int, default=1)
    parser.add_argument("--cold", type=float, default=0.2, help="share of items held out")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--user-format", default="{}", help="how user ids are written, e.g. 'lfm:u:{}'")
    parser.add_argument("--item-format", default="{}", help="how item ids are written, e.g. 'lfm:a:{}'")
    args = parser.parse_args()

    pairs = []
    seen = set()
    with open(args.pairs, encoding="utf-8", errors="replace") as f:
        if args.header:
            next(f)
        for line in f:
            cols = line.rstrip("\r\n").split(args.sep)
            if len(cols) <= max(args.ucol, args.icol):
                continue
            pair = (args.user_format.format(cols[args.ucol]), args.item_format.format(cols[args.icol]))
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    items = sorted({i for _, i in pairs})
    rng = random.Random(args.seed)
    rng.shuffle(items)
    cold = set(items[: round(len(items) * args.cold)])
    train = [(u, i) for u, i in pairs if i not in cold]
    trained_users = {u for u, _ in train}
    test = [(u, i) for u, i in pairs if i in cold and u in trained_users]
    os.makedirs(args.out, exist_ok=True)
    for name, rows in (("train.tsv", train), ("test.tsv", test)):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            f.writelines(f"{u}\t{i}\n" for u, i in rows)
    with open(os.path.join(args.out, "candidates.tsv"), "w", encoding="utf-8") as f:
        f.writelines(f"{i}\n" for i in sorted(cold))
    print(f"{len(items)} items, {len(cold)} cold; {len(train)} train pairs, {len(test)} test pairs")


if __name__ == "__main__":
    main()
