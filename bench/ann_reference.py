"""Reference vector-search libraries on the vectors `souk bench ann --out DIR` wrote.

Reads DIR/base.fvecs (the items), DIR/queries.fvecs and DIR/truth.ivecs (the exact top k
by inner product, from Souk's full scan) and measures, ANN-benchmarks style, recall@k and
queries per second with one query at a time on one thread, for:

- hnswlib (HNSW, inner-product space; M and ef_construction as given, ef swept),
- faiss IndexIVFFlat (inner product, sqrt(n) lists like Souk's index, nprobe swept),
- faiss IndexHNSWFlat (inner product, efSearch swept).

Build time (all cores, as each library builds by default) and the memory the index added
to the process (resident set before and after the build) are reported too.

    python3 -m venv venv && venv/bin/pip install hnswlib==0.8.0 faiss-cpu numpy threadpoolctl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE venv/bin/python bench/ann_reference.py DIR --json
"""

import argparse
import json
import math
import os
import time

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)[:, 1:]
    return np.ascontiguousarray(rows.view(dtype))


def rss_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def recall(truth, found):
    hits = sum(len(set(t.tolist()) & set(f.tolist())) for t, f in zip(truth, found))
    return hits / truth.size


def sweep(name, queries, truth, k, search, settings, set_param):
    curve = []
    for value in settings:
        set_param(value)
        found = np.empty((len(queries), k), dtype=np.int64)
        started = time.perf_counter()
        for j, q in enumerate(queries):
            found[j] = search(q[None, :], k)
        seconds = time.perf_counter() - started
        point = {"setting": value, "recall": recall(truth, found), "queries_per_second": len(queries) / seconds}
        curve.append(point)
        print(f"  {name} {value:>5}: recall@{k} {point['recall']:.4f}  {point['queries_per_second']:>8.0f} queries/s", flush=True)
    return curve


def fastest_at(curve, target):
    ok = [p for p in curve if p["recall"] >= target]
    return max(ok, key=lambda p: p["queries_per_second"]) if ok else None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--m", type=int, default=16, help="HNSW links per node")
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--libraries", default="hnswlib,faiss-ivf,faiss-hnsw")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    base = read_vecs(os.path.join(args.dir, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(args.dir, "queries.fvecs"), np.float32)
    truth = read_vecs(os.path.join(args.dir, "truth.ivecs"), np.int32)
    n, dim = base.shape
    k = truth.shape[1]
    threads = os.cpu_count()
    print(f"{n} items x {dim}, {len(queries)} queries, k={k}", flush=True)
    results = []
    wanted = args.libraries.split(",")

    if "hnswlib" in wanted:
        import hnswlib

        before = rss_bytes()
        started = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construction, random_seed=42)
        index.set_num_threads(threads)
        index.add_items(base, np.arange(n))
        build = time.perf_counter() - started
        memory = rss_bytes() - before
        index.set_num_threads(1)
        curve = sweep(
            "hnswlib ef", queries, truth, k,
            lambda q, kk: index.knn_query(q, k=kk)[0][0],
            [10, 20, 40, 80, 160, 320, 640],
            index.set_ef,
        )
        results.append({"library": f"hnswlib {hnswlib.__version__ if hasattr(hnswlib, '__version__') else ''}".strip(),
                         "index": f"HNSW M={args.m} ef_construction={args.ef_construction}", "build_seconds": build,
                         "build_threads": threads, "memory_bytes": memory, "curve": curve})
        del index

    if "faiss-ivf" in wanted or "faiss-hnsw" in wanted:
        import faiss

        faiss.omp_set_num_threads(threads)
    if "faiss-ivf" in wanted:
        lists = max(1, int(math.sqrt(n)))
        before = rss_bytes()
        started = time.perf_counter()
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
        index.train(base)
        index.add(base)
        build = time.perf_counter() - started
        memory = rss_bytes() - before
        faiss.omp_set_num_threads(1)

        def set_probe(p):
            index.nprobe = p

        curve = sweep(
            "faiss-ivf nprobe", queries, truth, k,
            lambda q, kk: index.search(q, kk)[1][0],
            [1, 2, 4, 8, 16, 32, 64, 128],
            set_probe,
        )
        faiss.omp_set_num_threads(threads)
        results.append({"library": f"faiss {faiss.__version__}", "index": f"IVFFlat lists={lists}",
                        "build_seconds": build, "build_threads": threads, "memory_bytes": memory, "curve": curve})
        del index, quantizer
    if "faiss-hnsw" in wanted:
        import faiss

        before = rss_bytes()
        started = time.perf_counter()
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = args.ef_construction
        index.add(base)
        build = time.perf_counter() - started
        memory = rss_bytes() - before
        faiss.omp_set_num_threads(1)

        def set_ef(e):
            index.hnsw.efSearch = e

        curve = sweep(
            "faiss-hnsw ef", queries, truth, k,
            lambda q, kk: index.search(q, kk)[1][0],
            [10, 20, 40, 80, 160, 320, 640],
            set_ef,
        )
        results.append({"library": f"faiss {faiss.__version__}", "index": f"HNSWFlat M=32 efConstruction={args.ef_construction}",
                        "build_seconds": build, "build_threads": threads, "memory_bytes": memory, "curve": curve})

    for r in results:
        r["at_recall"] = {"0.9": fastest_at(r["curve"], 0.9), "0.95": fastest_at(r["curve"], 0.95)}
        print(f"{r['library']} {r['index']}: build {r['build_seconds']:.1f} s, +{r['memory_bytes'] >> 20} MiB; "
              f"at recall 0.9: {r['at_recall']['0.9']}; at 0.95: {r['at_recall']['0.95']}", flush=True)
    if args.json:
        print(json.dumps({"items": n, "dims": dim, "queries": len(queries), "k": k, "results": results}, indent=2))


if __name__ == "__main__":
    main()
