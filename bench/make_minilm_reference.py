#!/usr/bin/env python3
"""Write testdata/embed/minilm-reference.json: reference vectors from the original model.

Usage: python3 bench/make_minilm_reference.py MODEL_DIR [OUT_JSON]

MODEL_DIR is the all-MiniLM-L6-v2 folder (model.safetensors, tokenizer.json, config.json,
1_Pooling/, modules.json, sentence_bert_config.json). The vectors come from
sentence-transformers itself (Transformer -> mean Pooling -> Normalize, max_seq_length 256),
on the CPU in float32, so the Rust encoder in crates/souk-embed is checked against the
model as it is published, not against a re-implementation.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import sentence_transformers  # noqa: E402
import torch  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

LONG_TEXT = (
    "This stainless steel insulated water bottle keeps drinks cold for twenty-four hours and hot "
    "for twelve hours. The double-wall vacuum construction prevents condensation, so your bag stays "
    "dry, and the powder-coated finish gives a secure grip that does not sweat. The leak-proof lid "
    "has a carry loop and a wide mouth that fits ice cubes and is easy to clean. It is free of BPA, "
    "phthalates and lead, and the food-grade steel does not retain flavours, so coffee in the "
    "morning will not taste like the lemonade you carried yesterday. Available in 500 ml, 750 ml "
    "and one litre sizes and in twelve colours, from matte black and forest green to sunset orange "
    "and ocean blue. Hand wash recommended; the lid is dishwasher safe on the top rack. Every "
    "bottle is covered by a lifetime warranty against manufacturing defects, and our customer "
    "service team answers questions within one business day. Customers use it for hiking, cycling, "
    "the gym, the office and long road trips; many buy a second one as a gift. Pair it with the "
    "straw lid, the sports cap or the silicone boot, all sold separately, to protect the base from "
    "dents and scratches when you set it down on hard surfaces. Note that carbonated drinks may "
    "build pressure inside the bottle, so open the lid slowly, and never put it in the microwave or "
    "the freezer. Dimensions of the 750 ml model: 7.5 cm diameter, 27 cm height, 380 grams empty."
)

SENTENCES = [
    # English product titles
    "Apple iPhone 15 Pro Max 256GB Natural Titanium",
    "Nike Air Zoom Pegasus 40 Men's Road Running Shoes",
    "Stainless Steel Insulated Water Bottle 750ml, Leak-Proof Lid",
    "Organic Cotton Crew Neck T-Shirt, Pack of 3, Navy",
    "Sony WH-1000XM5 Wireless Noise Cancelling Headphones",
    "LEGO Creator 3-in-1 Space Shuttle Building Kit (486 pieces)",
    "KitchenAid Artisan Stand Mixer 5 Qt, Empire Red",
    "Women's Floral Summer Maxi Dress with Pockets",
    # English shopper queries
    "red summer dress",
    "cheap wireless earbuds for running",
    "gift for a 10 year old who likes space",
    "usb-c charger 65w",
    "how long does the battery last?",
    # Chinese and mixed Chinese/English
    "红色连衣裙 夏季",
    "华为 Mate 60 Pro 手机 12GB+512GB 雅川青",
    "小米空气净化器 4 Lite 家用 除甲醛",
    "男士运动鞋 透气 跑步鞋",
    "iPhone 15 手机壳 防摔 透明",
    "Nike 耐克 Air Force 1 低帮 白色 板鞋",
    # Long text (> 256 word pieces): exercises truncation
    LONG_TEXT,
    # Short and odd strings
    "a",
    "   ",
    "",
    "😀 👍 !!!",
]


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    model_dir = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) == 3 else Path(__file__).resolve().parent.parent / "testdata/embed/minilm-reference.json"

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = SentenceTransformer(str(model_dir), device="cpu")
    assert model.max_seq_length == 256, model.max_seq_length
    tokenizer = model.tokenizer
    # One sentence at a time: padding cannot influence the reference.
    vectors = [model.encode([s], normalize_embeddings=True, convert_to_numpy=True)[0] for s in SENTENCES]
    token_counts = [len(tokenizer(s)["input_ids"]) for s in SENTENCES]
    assert max(token_counts) > 256, "the long text must exceed max_seq_length"

    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "generator": "bench/make_minilm_reference.py",
        "library": f"sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}",
        "max_seq_length": model.max_seq_length,
        "dim": int(vectors[0].shape[0]),
        "sentences": [
            {
                "text": s,
                "tokens_untruncated": n,
                "vector": [float(f"{x:.7g}") for x in v.tolist()],
            }
            for s, n, v in zip(SENTENCES, token_counts, vectors)
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(SENTENCES)} vectors to {out}")


if __name__ == "__main__":
    main()
