"""Reference values of the off-policy estimators, computed once with obp 0.5.7.

Builds a small logged-bandit input (12 rounds, 3 actions, 2 positions; seeded), runs obp's
InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting, DirectMethod and
DoublyRobust on it, and prints the per-round arrays Souk's estimators take (reward,
propensity, the target policy's probability of the logged action, the reward model at the
logged action, the reward model's expectation under the target policy) with obp's values, as
Rust literals for the test `ope::tests::equals_obp_on_identical_inputs`.

obp 0.5.7's pins do not install on Python 3.11; in a virtual environment:
    pip install --no-deps --ignore-requires-python obp==0.5.7
    pip install numpy scipy pandas scikit-learn pyyaml tqdm matplotlib seaborn torch
    python bench/ope_reference.py
"""

import numpy as np
import obp_torch_stand_in  # noqa: F401,E402  (before obp: see that file)

from obp.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting,
)

N_ROUNDS, N_ACTIONS, LEN_LIST = 12, 3, 2


def main():
    rng = np.random.RandomState(2026)
    action = rng.randint(N_ACTIONS, size=N_ROUNDS)
    position = rng.randint(LEN_LIST, size=N_ROUNDS)
    reward = rng.binomial(1, 0.4, size=N_ROUNDS).astype(float)
    pscore = rng.uniform(0.1, 0.9, size=N_ROUNDS)
    action_dist = rng.dirichlet(np.ones(N_ACTIONS), size=(N_ROUNDS, LEN_LIST)).transpose(0, 2, 1)
    # Some rounds where the target policy never shows the logged action.
    for i in (2, 7):
        action_dist[i, action[i], position[i]] = 0.0
    action_dist /= action_dist.sum(axis=1, keepdims=True)
    q_hat = rng.uniform(0.0, 0.6, size=(N_ROUNDS, N_ACTIONS, LEN_LIST))

    rows = np.arange(N_ROUNDS)
    target = action_dist[rows, action, position]
    q_factual = q_hat[rows, action, position]
    q_policy = (action_dist[rows, :, position] * q_hat[rows, :, position]).sum(axis=1)

    args = dict(
        reward=reward,
        action=action,
        position=position,
        pscore=pscore,
        action_dist=action_dist,
        estimated_rewards_by_reg_model=q_hat,
    )
    values = {
        "Ipw": InverseProbabilityWeighting().estimate_policy_value(**args),
        "Snipw": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**args),
        "Dm": DirectMethod().estimate_policy_value(**args),
        "Dr": DoublyRobust().estimate_policy_value(**args),
    }

    def rust(name, values):
        print(f"        let {name} = [{', '.join(repr(float(v)) for v in values)}];")

    rust("reward", reward)
    rust("pscore", pscore)
    rust("target", target)
    rust("q_factual", q_factual)
    rust("q_policy", q_policy)
    for name, value in values.items():
        print(f"            (Estimator::{name}, {float(value)!r}),")


if __name__ == "__main__":
    main()
