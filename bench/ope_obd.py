"""Off-policy evaluation on the Open Bandit Dataset sample: Souk beside obp 0.5.7.

Reproduces obp's `examples/obd/evaluate_off_policy_estimators.py` (evaluation policy Bernoulli
Thompson sampling with the ZOZOTOWN prior, behaviour policy uniform random, campaign "all")
on identical inputs for both:

1. The evaluation policy's action distribution: obp's `BernoulliTS(n_actions=80, len_list=3,
   is_zozotown_prior=True, campaign="all", random_state=12345).compute_batch_action_dist`
   (the same for every round: BTS here is context-free).
2. Its on-policy value: the mean click of the `bts/all` log (obp's
   `calc_on_policy_policy_value_estimate`).
3. For run b = 0..runs-1: the bootstrap sample of the `random/all` log that obp's
   `sample_bootstrap_bandit_feedback(random_state=b)` draws (rows sorted by timestamp, then
   `RandomState(b).choice(n, n)`), written as an Open Bandit log folder with a policy file
   (`round,position,item,probability`, one row per item with probability > 0 at the round's
   slot). `souk eval --protocol ope` estimates it (reward model FTRL, and again
   popularity-by-position); obp's IPW, SNIPW, DM and DR estimate the same rows with the reward
   model of its example (logistic regression, C=100, 3-fold cross-fitting).
4. Relative estimation error |V̂ − V| / V per estimator, mean and standard deviation over the
   runs, beside obp's published table (30 runs, logistic regression).

Usage (obp in its own virtual environment, see bench/ope_reference.py):
    python bench/ope_obd.py --obd OBP_SDIST/obp/dataset/obd --souk target/release/souk \
        --work /tmp/ope-work [--runs 30] [--n-sim 100000]
"""

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder

import obp_torch_stand_in  # noqa: F401,E402  (before obp: see that file)

from obp.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    RegressionModel,
    SelfNormalizedInverseProbabilityWeighting,
)
from obp.policy import BernoulliTS

ESTIMATORS = ["ipw", "snipw", "dm", "dr"]
# obp's examples/obd README: 30 runs, logistic regression, BTS from random, campaign "all".
PUBLISHED = {"dm": 0.156876, "ipw": 0.311082, "snipw": 0.311795, "dr": 0.292464}
N_ACTIONS, LEN_LIST, SEED = 80, 3, 12345


def read_log(path):
    data = pd.read_csv(path, index_col=0)
    # obp sorts by timestamp (quicksort); the files are already in time order, so a stable
    # sort gives the same rows.
    return data.sort_values("timestamp", kind="mergesort").reset_index(drop=True)


def obp_action_context(item_context):
    # obp's OpenBanditDataset.pre_process (its `axis=1` beside `columns=` dropped: pandas 2+ refuses both).
    item_feature_0 = item_context["item_feature_0"].to_frame()
    item_feature_cat = item_context.drop(columns=["item_id", "item_feature_0"]).apply(
        LabelEncoder().fit_transform
    )
    return pd.concat(objs=[item_feature_cat, item_feature_0], axis=1).values


def write_run(directory, sample, item_context_path, dist):
    """The log folder `directory/log` and the policy file `directory/policy.csv`."""
    (directory / "log").mkdir(parents=True, exist_ok=True)
    sample.to_csv(directory / "log" / "all.csv")
    shutil.copy(item_context_path, directory / "log" / "item_context.csv")
    n = len(sample)
    positions = sample["position"].to_numpy()
    rounds = np.repeat(np.arange(n), N_ACTIONS)
    slots = np.repeat(positions, N_ACTIONS)
    items = np.tile(np.arange(N_ACTIONS), n)
    probabilities = dist[items, slots - 1]
    keep = probabilities > 0
    policy = pd.DataFrame(
        {"round": rounds[keep], "position": slots[keep], "item": items[keep], "probability": probabilities[keep]}
    )
    policy.to_csv(directory / "policy.csv", index=False, float_format="%.17g")
    return directory / "policy.csv"


def run_souk(souk, directory, policy, params):
    command = [str(souk), "--data-dir", str(directory / "data"), "eval", "--protocol", "ope", "--path",
               str(directory / "log"), "--policy", str(policy), "--json", "--seed", str(SEED)]
    for param in params:
        command += ["--param", param]
    started = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    return {e["estimator"]: e for e in report["estimates"]}, time.perf_counter() - started


def run_obp(sample_index, data, context, action_context, dist):
    reward = data["click"].to_numpy()[sample_index]
    action = data["item_id"].to_numpy()[sample_index]
    position = data["position"].to_numpy()[sample_index] - 1
    pscore = data["propensity_score"].to_numpy()[sample_index]
    regression = RegressionModel(
        n_actions=N_ACTIONS,
        len_list=LEN_LIST,
        action_context=action_context,
        base_model=LogisticRegression(max_iter=10000, C=100, random_state=SEED),
    )
    q_hat = regression.fit_predict(
        context=context[sample_index], action=action, reward=reward, position=position, pscore=pscore,
        n_folds=3, random_state=SEED,
    )
    action_dist = np.tile(dist, (len(sample_index), 1, 1))
    args = dict(reward=reward, action=action, position=position, pscore=pscore, action_dist=action_dist,
                estimated_rewards_by_reg_model=q_hat)
    return {
        "ipw": InverseProbabilityWeighting().estimate_policy_value(**args),
        "snipw": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**args),
        "dm": DirectMethod().estimate_policy_value(**args),
        "dr": DoublyRobust().estimate_policy_value(**args),
    }


def summary(errors):
    return f"{np.mean(errors):.3f} ± {np.std(errors, ddof=1):.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--obd", type=Path, required=True, help="the obd folder of obp's sdist")
    parser.add_argument("--souk", type=Path, required=True, help="the souk binary")
    parser.add_argument("--work", type=Path, required=True, help="a scratch folder")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--n-sim", type=int, default=100000, help="BTS Monte Carlo draws")
    args = parser.parse_args()

    random_dir = args.obd / "random" / "all"
    data = read_log(random_dir / "all.csv")
    item_context = pd.read_csv(random_dir / "item_context.csv", index_col=0)
    action_context = obp_action_context(item_context)
    user_cols = data.columns.str.contains("user_feature")
    context = pd.get_dummies(data.loc[:, user_cols], drop_first=True).values.astype(float)
    truth = pd.read_csv(args.obd / "bts" / "all" / "all.csv", index_col=0)["click"].mean()

    started = time.perf_counter()
    policy = BernoulliTS(n_actions=N_ACTIONS, len_list=LEN_LIST, is_zozotown_prior=True, campaign="all",
                         random_state=SEED)
    dist = policy.compute_batch_action_dist(n_rounds=1, n_sim=args.n_sim)[0]
    print(f"BTS action distribution: {args.n_sim} draws in {time.perf_counter() - started:.1f} s; "
          f"items with probability > 0 per slot: {[(dist[:, k] > 0).sum() for k in range(LEN_LIST)]}")
    print(f"on-policy value of BTS (mean click of bts/all): {truth:.6f}; random/all: {data['click'].mean():.6f}")

    # The whole log once, for the example command in BENCHMARKS.md.
    full_policy = write_run(args.work / "full", data, random_dir / "item_context.csv", dist)
    full, seconds = run_souk(args.souk, args.work / "full", full_policy, [])
    print(f"whole random/all log, souk (ftrl, 100 resamples), {seconds:.2f} s:")
    for name in ESTIMATORS:
        e = full[name]
        print(f"  {name:<6} {e['value']:.6f}  95% CI [{e['ci'][0]:.6f}, {e['ci'][1]:.6f}]")

    variants = {"souk ftrl": [], "souk pop-by-pos": ["ope.reward_model=popularity-by-position"]}
    values = {key: {name: [] for name in ESTIMATORS} for key in [*variants, "obp"]}
    covered = {name: 0 for name in ESTIMATORS}
    souk_seconds = []
    n = len(data)
    for b in range(args.runs):
        index = np.random.RandomState(b).choice(np.arange(n), size=n, replace=True)
        sample = data.iloc[index].reset_index(drop=True)
        directory = args.work / f"run-{b}"
        policy_path = write_run(directory, sample, random_dir / "item_context.csv", dist)
        for key, params in variants.items():
            estimates, seconds = run_souk(args.souk, directory, policy_path, params)
            souk_seconds.append(seconds)
            for name in ESTIMATORS:
                values[key][name].append(estimates[name]["value"])
                if key == "souk ftrl":
                    lo, hi = estimates[name]["ci"]
                    covered[name] += lo <= truth <= hi
        for name, value in run_obp(index, data, context, action_context, dist).items():
            values["obp"][name].append(value)
        shutil.rmtree(directory)
    errors = {key: {name: np.abs(np.array(v) - truth) / truth for name, v in by.items()} for key, by in values.items()}
    identical = {
        name: np.max(np.abs(np.array(values["souk ftrl"][name]) - np.array(values["obp"][name])))
        for name in ["ipw", "snipw"]
    }

    print(f"\nrelative estimation error over {args.runs} bootstrap runs (mean ± std), BTS from random, 'all':")
    print(f"{'estimator':<10} {'souk ftrl':>16} {'souk pop-by-pos':>16} {'obp (here)':>16} {'obp published':>14}"
          f" {'souk CI covers V':>17}")
    for name in ESTIMATORS:
        print(f"{name:<10} {summary(errors['souk ftrl'][name]):>16} {summary(errors['souk pop-by-pos'][name]):>16}"
              f" {summary(errors['obp'][name]):>16} {PUBLISHED[name]:>14.3f} {covered[name]:>12}/{args.runs}")
    print(f"largest |souk − obp| on identical inputs over the runs: ipw {identical['ipw']:.2e}, "
          f"snipw {identical['snipw']:.2e}")
    print(f"souk eval per run: median {np.median(souk_seconds):.2f} s")


if __name__ == "__main__":
    main()
