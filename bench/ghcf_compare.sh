#!/usr/bin/env bash
# Purchases alone versus purchases + carts on a GHCF-layout folder (Beibei, Taobao), in
# purchase NDCG@10 / Recall@10 with carted items still rankable (`--target purchase`).
#
# Usage: bench/ghcf_compare.sh SOUK_BINARY GHCF_DIR WORK_DIR [MODELS] [CART_WEIGHTS]
#   MODELS        default als,ease,itemknn,rp3beta,popularity (ease needs an items x items
#                 dense matrix: leave it out on large catalogues)
#   CART_WEIGHTS  default "1 4 10": add_to_cart weights tried on a validation split carved
#                 from the training purchases (one per user); the test split then runs with
#                 the default weights and with the validation winner for ALS, the one
#                 default model that reads weights (the others are binary by default).
# Writes one JSON report per run into WORK_DIR and prints NDCG@10 and Recall@10.
set -euo pipefail
souk=$1 ghcf=$2 work=$3
models=${4:-als,ease,itemknn,rp3beta,popularity}
weights=${5:-1 4 10}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
for kind in test val; do
  extra=(); [[ $kind == val ]] && extra=(--validation 7)
  python3 "$here/ghcf_split.py" "$ghcf" "$work/$kind-buy" "${extra[@]}"
  python3 "$here/ghcf_split.py" "$ghcf" "$work/$kind-buy-cart" --with-carts "${extra[@]}"
done
run() { local out=$1; shift; RUST_LOG=warn "$@" --target purchase --k 10,20 --json > "$work/$out.json"; }
run val-buy "$souk" eval --split "$work/val-buy" --models als
best=4 best_score=-1
for w in $weights; do
  SOUK__WEIGHTS__ADD_TO_CART=$w run "val-cart$w" "$souk" eval --split "$work/val-buy-cart" --models als
  score=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['metrics']['ndcg@10'])" "$work/val-cart$w.json")
  if python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$score" "$best_score"; then
    best=$w best_score=$score
  fi
done
echo "validation picks add_to_cart = $best (als ndcg@10 $best_score)"
run test-buy "$souk" eval --split "$work/test-buy" --models "$models"
run test-cart-default "$souk" eval --split "$work/test-buy-cart" --models "$models"
SOUK__WEIGHTS__ADD_TO_CART=$best run "test-cart$best-als" "$souk" eval --split "$work/test-buy-cart" --models als
python3 - "$work" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    report = json.loads(path.read_text())
    for result in report["results"]:
        m = result["metrics"]
        print(f"{path.stem:<22} {result['model']:<11} ndcg@10 {m['ndcg@10']:.4f}  recall@10 {m['recall@10']:.4f}")
PY
