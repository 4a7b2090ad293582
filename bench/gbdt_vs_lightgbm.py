#!/usr/bin/env python3
"""LightGBM lambdarank against Souk's LambdaMART on the same synthetic ranking data, with the
same parameters: test NDCG@10 and training seconds.

Usage:
  cargo run --release -p souk-engine --example gbdt_vs_lightgbm -- DIR [TRAIN_GROUPS] [GROUP_SIZE] [THREADS]
  gbdt_vs_lightgbm.py DIR [--threads 2]

The example writes DIR/{train,valid,test}.csv, DIR/params.json and Souk's test scores
(DIR/souk_test_scores.txt). This script trains LightGBM with the same parameters (early
stopping on the validation NDCG@eval_at), and computes NDCG@10 of both learners' test
scores with one definition: gain 2^label - 1, discount 1/log2(rank + 1), ties in row
order, groups without a relevant row left out. Training time counts building LightGBM's
Dataset (binning), as Souk's counts its binning; CPU seconds (all threads) are reported next
to wall seconds because they suffer less from other processes on the machine. Prints one
JSON object.

Needs: pip install lightgbm numpy.
"""
import argparse, json, os, time

import lightgbm as lgb
import numpy as np


def load(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    groups = table[:, 0].astype(np.int64)
    _, sizes = np.unique(groups, return_counts=True)  # groups are contiguous and increasing
    return table[:, 2:].astype(np.float32), table[:, 1], sizes, header[2:]


def mean_ndcg(scores, labels, sizes, k):
    total, count, start = 0.0, 0, 0
    discounts = 1.0 / np.log2(np.arange(2, max(sizes) + 2))
    for size in sizes:
        s, l = scores[start:start + size], labels[start:start + size]
        start += size
        ideal = np.sort(l)[::-1][:k]
        idcg = np.sum((2.0 ** ideal - 1.0) * discounts[:len(ideal)])
        if idcg <= 0:
            continue
        order = np.argsort(-s, kind="stable")[:k]
        dcg = np.sum((2.0 ** l[order] - 1.0) * discounts[:len(order)])
        total += dcg / idcg
        count += 1
    return total / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    p = json.load(open(os.path.join(a.dir, "params.json")))
    assert p["objective"] == "lambdarank"
    x_train, y_train, q_train, names = load(os.path.join(a.dir, "train.csv"))
    x_valid, y_valid, q_valid, _ = load(os.path.join(a.dir, "valid.csv"))
    x_test, y_test, q_test, _ = load(os.path.join(a.dir, "test.csv"))

    params = {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [p["eval_at"]],
        "lambdarank_truncation_level": p["truncation"] if p["truncation"] > 0 else 10000,
        "learning_rate": p["learning_rate"],
        "num_leaves": p["max_leaves"],
        "max_depth": p["max_depth"] if p["max_depth"] > 0 else -1,
        "min_data_in_leaf": p["min_data_in_leaf"],
        "min_sum_hessian_in_leaf": p["min_sum_hessian"],
        "min_gain_to_split": p["min_split_gain"],
        "lambda_l2": p["lambda_l2"],
        "max_bin": p["max_bins"],
        "bin_construct_sample_cnt": p["bin_sample"],
        "feature_fraction": p["feature_fraction"],
        "seed": p["seed"],
        "num_threads": a.threads,
        "deterministic": True,
        "verbose": -1,
    }
    started, cpu_started = time.perf_counter(), time.process_time()
    train = lgb.Dataset(x_train, y_train, group=q_train, feature_name=names)
    valid = lgb.Dataset(x_valid, y_valid, group=q_valid, reference=train)
    callbacks = [lgb.early_stopping(p["early_stopping_rounds"], verbose=False)] if p["early_stopping_rounds"] > 0 else []
    booster = lgb.train(params, train, num_boost_round=p["trees"], valid_sets=[valid], callbacks=callbacks)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started

    started = time.perf_counter()
    scores = booster.predict(x_test, num_iteration=booster.best_iteration or None, num_threads=1)
    predict_seconds = time.perf_counter() - started
    result = {
        "learner": f"lightgbm {lgb.__version__}",
        "rows": {"train": len(y_train), "valid": len(y_valid), "test": len(y_test)},
        "threads": a.threads,
        "test_ndcg@10": mean_ndcg(scores, y_test, q_test, 10),
        "train_seconds": seconds,
        "train_cpu_seconds": cpu_seconds,
        "trees": booster.best_iteration or booster.current_iteration(),
        "iterations": booster.current_iteration(),
        "predict_ns_per_row (numpy batch, 1 thread)": predict_seconds * 1e9 / len(y_test),
    }
    souk_scores = os.path.join(a.dir, "souk_test_scores.txt")
    if os.path.exists(souk_scores):
        result["souk_test_ndcg@10 (this script's NDCG)"] = mean_ndcg(np.loadtxt(souk_scores), y_test, q_test, 10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
