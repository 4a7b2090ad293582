#!/usr/bin/env python3
"""ALS training time: Souk against `implicit` (0.7.3) on the same training split, the same
factors, regularisation, confidence, iterations and thread count, in one window.

Usage: als_vs_implicit.py SPLIT_DIR [--souk PATH] [--factors 64] [--regularization 1]
       [--alpha 10] [--iterations 15] [--threads 2] [--repeat 5]
SPLIT_DIR holds train.tsv (user<TAB>item), e.g. as written by a reference run.
Runs alternate (implicit, Souk, implicit, Souk, ...) so that both see the same machine
load; the medians are compared. The reference runs at its best: one BLAS thread (its own
advice; its threads are OpenMP's), no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE override, and
the BLAS kernel it loaded is reported (threadpoolctl).
Needs: pip install implicit==0.7.3 numpy scipy threadpoolctl. Prints one JSON object.
"""
import argparse, json, os, statistics, subprocess, time

# implicit's own advice: its threads, not BLAS's (otherwise it oversubscribes and slows).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# A forced core type or cache size can pick a slower kernel than OpenBLAS's own detection.
for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(name, None)

import numpy as np
import scipy.sparse as sp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("--souk", default="target/release/souk")
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--regularization", type=float, default=1.0)
    ap.add_argument("--alpha", type=float, default=10.0)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()

    users, items, rows, cols = {}, {}, [], []
    with open(os.path.join(a.split, "train.tsv")) as f:
        for line in f:
            u, i = line.rstrip("\n").split("\t")[:2]
            rows.append(users.setdefault(u, len(users)))
            cols.append(items.setdefault(i, len(items)))
    m = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(users), len(items)))
    m.sum_duplicates()
    m.data[:] = 1.0

    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_info
    import implicit.cpu._als  # noqa: F401  (loads the BLAS that the CPU solver calls)
    blas = sorted({f"{p['internal_api']} {p['version']} {p.get('architecture')}, {p['num_threads']} thread(s)"
                   for p in threadpool_info() if p["user_api"] == "blas"})

    env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads), SOUK__LOG__LEVEL="warn")
    params = [f"--param=als.{k}={v}" for k, v in
              (("factors", a.factors), ("regularization", a.regularization), ("alpha", a.alpha), ("iterations", a.iterations))]
    implicit_runs, souk_runs = [], []
    for _ in range(a.repeat):
        model = AlternatingLeastSquares(factors=a.factors, regularization=a.regularization, alpha=a.alpha,
                                        iterations=a.iterations, num_threads=a.threads, use_gpu=False,
                                        calculate_training_loss=False, random_state=42)
        started = time.perf_counter()
        model.fit(m, show_progress=False)
        implicit_runs.append(time.perf_counter() - started)
        out = subprocess.run([a.souk, "bench", "train", "--split", a.split, "--models", "als", "--repeat", "1", "--json", *params],
                             env=env, check=True, capture_output=True, text=True).stdout
        souk_runs.extend(json.loads(out)["results"][0]["runs"])

    summary = lambda runs: {"runs": runs, "median": statistics.median(runs), "fastest": min(runs)}
    result = {
        "split": a.split, "users": m.shape[0], "items": m.shape[1], "interactions": int(m.nnz),
        "factors": a.factors, "regularization": a.regularization, "alpha": a.alpha, "iterations": a.iterations, "threads": a.threads,
        "implicit_blas": blas, "load_average": os.getloadavg(),
        "implicit_seconds": summary(implicit_runs),
        "souk_seconds": summary(souk_runs),
        "speedup_median": statistics.median(implicit_runs) / statistics.median(souk_runs),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
