"""TF-IDF + logistic regression (scikit-learn), the reference for `souk eval --protocol sentiment`.

Reads the split `souk eval --protocol sentiment --path REVIEWS.csv --write-split DIR` wrote
(DIR/train.tsv and DIR/test.tsv: label, group, text) and fits, on the training reviews only:

- char: TF-IDF over character 1–2-grams (the usual baseline for Chinese, which has no spaces),
- words: TF-IDF over jieba words and word bigrams,

each a logistic regression whose C is chosen by 5-fold cross-validated accuracy on the
training reviews (grid 0.1 … 100), then judged once on the test reviews: accuracy, AUC and
log loss, the same figures Souk prints.

    python3 -m venv venv && venv/bin/pip install scikit-learn==1.5.2 jieba threadpoolctl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE venv/bin/python bench/sentiment_reference.py DIR --json
"""

import argparse
import csv
import json
import sys
import time

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold


def read(path):
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], rows[1:]
    assert header == ["label", "group", "text"], header
    return [row[2] for row in rows], [int(row[0]) for row in rows]


def words(text):
    import jieba

    return [w for w in jieba.lcut(text) if w.strip()]


def vectorizer(kind):
    if kind == "char":
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    return TfidfVectorizer(tokenizer=words, token_pattern=None, lowercase=True, ngram_range=(1, 2), min_df=2,
                           sublinear_tf=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("split")
    parser.add_argument("--kinds", default="char,words")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    train_x, train_y = read(f"{args.split}/train.tsv")
    test_x, test_y = read(f"{args.split}/test.tsv")
    results = []
    for kind in args.kinds.split(","):
        started = time.perf_counter()
        vec = vectorizer(kind)
        train_m = vec.fit_transform(train_x)
        test_m = vec.transform(test_x)
        search = GridSearchCV(
            LogisticRegression(max_iter=2000, solver="liblinear"),
            {"C": [0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0]},
            cv=StratifiedKFold(5, shuffle=True, random_state=0),
            scoring="accuracy",
        )
        search.fit(train_m, train_y)
        p = search.best_estimator_.predict_proba(test_m)[:, 1]
        results.append({
            "features": kind,
            "vocabulary": len(vec.vocabulary_),
            "C": search.best_params_["C"],
            "accuracy": accuracy_score(test_y, p >= 0.5),
            "auc": roc_auc_score(test_y, p),
            "log_loss": log_loss(test_y, p),
            "seconds": time.perf_counter() - started,
        })
    report = {"train": len(train_y), "test": len(test_y), "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(f"{r['features']:<6} accuracy {r['accuracy']:.4f}  auc {r['auc']:.4f}  log loss {r['log_loss']:.4f}"
                  f"  (C {r['C']}, {r['vocabulary']} features, {r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
