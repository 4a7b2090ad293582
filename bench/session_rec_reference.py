#!/usr/bin/env python3
"""Reference next-item figures from session-rec's own code (rn5l/session-rec), on the same
files `souk eval --protocol next-item` reads.

It imports session-rec's loader (`evaluation.loader.load_data`), algorithms
(`algorithms.knn.{sknn,vsknn,stan,vstan}`, `algorithms.baselines.{sr,ar}`), metrics
(`evaluation.metrics.accuracy.{HitRate,MRR}`) and `evaluation.evaluation.evaluate_sessions`
from a checkout given with --session-rec, and runs them unchanged. Two shims let that code
run on current numpy / Python (it predates numpy 2 and Python 3.8): `np.in1d = np.isin`
where numpy lacks it, and `time.clock = time.process_time`.

Files: --data DIR --prefix NAME reads DIR/NAME_train_full.txt and DIR/NAME_test.txt (or,
with --validation, NAME_train_tr.txt and NAME_train_valid.txt), the layout session-rec's
preprocessing writes (tab-separated SessionId, ItemId, Time in Unix seconds).

--diginetica CSV --out DIR first writes such a split from DIGINETICA's
`train-item-views.csv` layout with session-rec's own preprocessing
(`preprocessing/session_based/preprocess_diginetica.py`: `load_data` with TYPE 2 — the
day plus `timeframe` milliseconds —, `filter_data` — sessions of at least 2 clicks, items
of at least --min-item-support clicks —, and `split_data` — sessions ending in the last
--days-test days are the test set, training sessions of fewer than 2 clicks are dropped;
the validation split is cut the same way from the training set), then evaluates on it.

Needs numpy, pandas, pympler and psutil. session-rec's DIGINETICA preprocessing relies on
`groupby().apply()` keeping the grouping column, which pandas 3 no longer does: run
--diginetica with pandas 2 (2.1.4 with numpy 1.26 was used; the RSC15 runs also work on
pandas 3). Prints one JSON line per algorithm:
{"algorithm", "params", "hr@20", "mrr@20", "seconds"}.

Example:
    python3 bench/session_rec_reference.py --session-rec SESSION_REC_CHECKOUT \
        --data DATA_DIR/yoochoose-rsc15-100k --prefix yoochoose-clicks-100k
"""

import argparse
import importlib
import json
import os
import sys
import time

import numpy as np

if not hasattr(np, "in1d"):
    np.in1d = np.isin
if not hasattr(time, "clock"):
    time.clock = time.process_time

# The algorithms and the parameters run (session-rec's example configurations:
# conf/example_next.yml for SKNN, V-SKNN, SR and AR; conf/example_all_models_exp.yml for VSTAN;
# STAN with the defaults of its constructor and the k of VSTAN; vstan-mrr and vstan-hr below).
ALGORITHMS = {
    "sknn": ("algorithms.knn.sknn", "ContextKNN", {"k": 100, "sample_size": 500, "similarity": "cosine"}),
    "vsknn": (
        "algorithms.knn.vsknn",
        "VMContextKNN",
        {"k": 500, "sample_size": 5000, "weighting": "quadratic", "weighting_score": "div", "idf_weighting": 5},
    ),
    "stan": ("algorithms.knn.stan", "STAN", {"k": 200, "sample_size": 5000}),
    "vstan": (
        "algorithms.knn.vstan",
        "VSKNN_STAN",
        {
            "k": 200,
            "sample_size": 5000,
            "similarity": "vec",
            "lambda_spw": 1.81,
            "lambda_snh": 40,
            "lambda_inh": 0.905,
            "lambda_ipw": 0.905,
            "lambda_idf": False,
        },
    ),
    # session-rec's tuned VSTAN settings for RSC15 (conf/save/rsc15/window/window_rsc15_vstan.yml).
    "vstan-mrr": (
        "algorithms.knn.vstan",
        "VSKNN_STAN",
        {
            "k": 1500,
            "sample_size": 10000,
            "similarity": "cosine",
            "lambda_spw": 0.5,
            "lambda_snh": 5,
            "lambda_inh": 2,
            "lambda_ipw": 2,
            "lambda_idf": 2,
        },
    ),
    "vstan-hr": (
        "algorithms.knn.vstan",
        "VSKNN_STAN",
        {
            "k": 2000,
            "sample_size": 10000,
            "similarity": "cosine",
            "lambda_spw": 4,
            "lambda_snh": 20,
            "lambda_inh": 0.5,
            "lambda_ipw": 1,
            "lambda_idf": 2,
        },
    ),
    "sr": ("algorithms.baselines.sr", "SequentialRules", {"steps": 20, "weighting": "quadratic"}),
    "ar": ("algorithms.baselines.ar", "AssociationRules", {}),
}


def write_diginetica_split(session_rec, csv_path, out_dir, min_item_support, days_test):
    """session-rec's DIGINETICA preprocessing (TYPE 2), written as NAME_train_full.txt,
    NAME_test.txt, NAME_train_tr.txt and NAME_train_valid.txt under out_dir."""
    prep = importlib.import_module("preprocessing.session_based.preprocess_diginetica")
    prep.TYPE = 2
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.splitext(csv_path)[0]
    name = os.path.basename(base)
    data = prep.load_data(base)
    data = prep.filter_data(data, min_item_support, 2)
    prep.split_data(data, os.path.join(out_dir, name), days_test)
    return name


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--session-rec", required=True, help="a checkout of rn5l/session-rec")
    parser.add_argument("--data", help="directory of the split files")
    parser.add_argument("--prefix", help="file name prefix of the split files")
    parser.add_argument("--diginetica", help="DIGINETICA train-item-views CSV to preprocess first")
    parser.add_argument("--out", help="with --diginetica: where the split files go")
    parser.add_argument("--min-item-support", type=int, default=5)
    parser.add_argument("--days-test", type=int, default=7)
    parser.add_argument("--validation", action="store_true", help="train_tr -> train_valid instead")
    parser.add_argument("--algorithms", default="vsknn,vstan,sknn,stan,sr,ar")
    parser.add_argument("--cut-off", type=int, default=20)
    args = parser.parse_args()

    session_rec = os.path.abspath(args.session_rec)
    sys.path.insert(0, session_rec)
    os.chdir(session_rec)  # its modules open files relative to the checkout
    if args.diginetica:
        if not args.out:
            parser.error("--diginetica needs --out")
        out = os.path.abspath(args.out)
        prefix = write_diginetica_split(session_rec, os.path.abspath(args.diginetica), out, args.min_item_support,
                                        args.days_test)
        data_dir = out
    else:
        if not (args.data and args.prefix):
            parser.error("give --data and --prefix, or --diginetica and --out")
        data_dir, prefix = os.path.abspath(args.data), args.prefix

    loader = importlib.import_module("evaluation.loader")
    evaluation = importlib.import_module("evaluation.evaluation")
    accuracy = importlib.import_module("evaluation.metrics.accuracy")
    train, test = loader.load_data(data_dir + os.sep, prefix, train_eval=args.validation)
    for key in args.algorithms.split(","):
        module, cls, params = ALGORITHMS[key]
        algorithm = getattr(importlib.import_module(module), cls)(**params)
        started = time.time()
        algorithm.fit(train.copy())
        metrics = [accuracy.HitRate(args.cut_off), accuracy.MRR(args.cut_off)]
        result = evaluation.evaluate_sessions(algorithm, metrics, test.copy(), train)
        out = {
            "algorithm": key,
            "params": params,
            f"hr@{args.cut_off}": float(result[0][1]),
            f"mrr@{args.cut_off}": float(result[1][1]),
            "seconds": round(time.time() - started, 1),
        }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
