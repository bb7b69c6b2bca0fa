#!/usr/bin/env python3
"""Builds the files of bench/pii-data/ from the public sources named in README.md.

Usage: extract.py RAW_DIR OUT_DIR, where RAW_DIR holds
  banking77_train.csv, banking77_test.csv      (PolyAI-LDN/task-specific-datasets, banking_data/)
  nlupp_{banking,hotels}_{0..19}.json          (the same repository, nlupp/data/<domain>/fold<i>.json)
  synth_dataset_v2.json                        (microsoft/presidio-research, data/)
  generated_large.json                         (microsoft/presidio-research, tests/data/)
Writes one JSON document per line:
  clean.jsonl     {"source": ..., "text": ...}     real customer queries, no personal data
  presidio.jsonl  {"text": ..., "spans": [{"kind": ..., "start": ..., "end": ...}]}
                  (character offsets; only the entity types this crate detects are kept,
                  as card, iban, email, phone, ssn)
  presidio_large.jsonl  the same from generated_large.json: a second sample of the same
                  generator, other values, kept apart to check that what was tuned on
                  presidio.jsonl holds on data not looked at while tuning
"""
import csv
import json
import os
import sys

raw, out = sys.argv[1], sys.argv[2]
seen = set()
with open(os.path.join(out, "clean.jsonl"), "w", encoding="utf-8") as f:
    for split in ("train", "test"):
        with open(os.path.join(raw, f"banking77_{split}.csv"), encoding="utf-8") as c:
            for row in csv.DictReader(c):
                t = row["text"].strip()
                if t and t not in seen:
                    seen.add(t)
                    f.write(json.dumps({"source": "banking77", "text": t}, ensure_ascii=False) + "\n")
    for domain in ("banking", "hotels"):
        for i in range(20):
            with open(os.path.join(raw, f"nlupp_{domain}_{i}.json"), encoding="utf-8") as j:
                for ex in json.load(j):
                    t = ex["text"].strip()
                    if t and t not in seen:
                        seen.add(t)
                        f.write(json.dumps({"source": f"nlupp-{domain}", "text": t}, ensure_ascii=False) + "\n")

KINDS = {"CREDIT_CARD": "card", "IBAN_CODE": "iban", "EMAIL_ADDRESS": "email",
         "PHONE_NUMBER": "phone", "US_SSN": "ssn"}
for source, target in (("synth_dataset_v2.json", "presidio.jsonl"),
                       ("generated_large.json", "presidio_large.jsonl")):
    with open(os.path.join(raw, source), encoding="utf-8") as j:
        data = json.load(j)
    with open(os.path.join(out, target), "w", encoding="utf-8") as f:
        for ex in data:
            spans = [{"kind": KINDS[s["entity_type"]], "start": s["start_position"], "end": s["end_position"]}
                     for s in ex["spans"] if s["entity_type"] in KINDS]
            spans.sort(key=lambda s: s["start"])
            f.write(json.dumps({"text": ex["full_text"], "spans": spans}, ensure_ascii=False) + "\n")
