#!/usr/bin/env python3
"""Rebuilds the committed CSV files of bench/routing-data from clones of the sources.

    git clone https://github.com/PolyAI-LDN/task-specific-datasets /tmp/polyai
    git clone https://github.com/xliuhw/NLU-Evaluation-Data /tmp/hwu
    python3 bench/routing-data/prepare.py /tmp/polyai /tmp/hwu

Each output file is `text,label` CSV (RFC 4180 quoting), in the sources' order.
"""
import csv
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
KFOLD = "CrossValidation/autoGeneFromRealAnno/autoGene_2018_03_22-13_01_25_169/CrossValidation/KFold_1"


def write(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label"])
        for text, label in rows:
            w.writerow([text, label])


def banking(root):
    for split in ("train", "test"):
        with open(os.path.join(root, "banking_data", f"{split}.csv"), encoding="utf-8") as f:
            rows = [(r["text"].strip(), r["category"]) for r in csv.DictReader(f)]
        write(os.path.join(HERE, "banking77", f"{split}.csv"), rows)


def hwu(root):
    for split, sub in (("train", "trainset"), ("test", "testset/csv")):
        rows = []
        for path in sorted(glob.glob(os.path.join(root, KFOLD, sub, "*.csv"))):
            with open(path, encoding="utf-8") as f:
                for r in csv.DictReader(f, delimiter=";"):
                    text = (r["answer_from_anno"] or "").strip()
                    if text:
                        rows.append((text, f"{r['scenario']}_{r['intent']}"))
        write(os.path.join(HERE, "hwu64", f"{split}.csv"), rows)


if __name__ == "__main__":
    banking(sys.argv[1])
    hwu(sys.argv[2])
