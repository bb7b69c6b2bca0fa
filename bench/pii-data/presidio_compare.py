#!/usr/bin/env python3
"""Presidio's pattern recognizers on the sets of benches/sensitive.rs: recall per kind,
messages flagged, and milliseconds per KiB.

  python3 -m venv /tmp/presidio && /tmp/presidio/bin/pip install presidio-analyzer
  SENSITIVE_BENCH_DUMP=/tmp/pii cargo bench --bench sensitive      # synthetic + tickets
  /tmp/presidio/bin/python bench/pii-data/presidio_compare.py bench/pii-data /tmp/pii

The recognizers are called directly (CreditCard, Iban, Email, Phone, UsSsn, UkNino), without
an NLP engine: Presidio's AnalyzerEngine would add a spaCy pipeline on top (its model is not
on PyPI), so these figures are the lower bound of its cost. Every result counts, whatever
its score (AnalyzerEngine's default threshold is 0).
"""
import json
import sys
import time

from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer, EmailRecognizer, IbanRecognizer, PhoneRecognizer,
    UkNinoRecognizer, UsSsnRecognizer)

data, dump = sys.argv[1], sys.argv[2]
RECOGNIZERS = [
    (CreditCardRecognizer(), "CREDIT_CARD", "card"),
    (IbanRecognizer(), "IBAN_CODE", "iban"),
    (EmailRecognizer(), "EMAIL_ADDRESS", "email"),
    (PhoneRecognizer(), "PHONE_NUMBER", "phone"),
    (UsSsnRecognizer(), "US_SSN", "ssn"),
    (UkNinoRecognizer(), "UK_NINO", "national_id"),
]


def detect(text):
    out = []
    for rec, entity, kind in RECOGNIZERS:
        for r in rec.analyze(text, entities=[entity], nlp_artifacts=None) or []:
            out.append((kind, r.start, r.end))
    return out


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def recall(samples):
    by = {}
    for text, kind, start, end in samples:
        hits = detect(text)
        ok = any(k == kind and s < end and start < e for k, s, e in hits)
        f, n = by.get(kind, (0, 0))
        by[kind] = (f + ok, n + 1)
    for kind, (f, n) in by.items():
        print(f"| {kind} | {f} | {n} | {100.0 * f / n:.1f} % |")


print("## Presidio recall, seeded synthetic set\n\n| kind | found | total | recall |\n|---|---:|---:|---:|")
recall([(s["text"], s["kind"], s["start"], s["end"]) for s in load(f"{dump}/synthetic.jsonl")
        if s["kind"] != "api_key"])
print("\n## Presidio recall, presidio-research synth_dataset_v2\n\n| kind | found | total | recall |\n|---|---:|---:|---:|")
pres = load(f"{data}/presidio.jsonl")
recall([(ex["text"], s["kind"], s["start"], s["end"]) for ex in pres for s in ex["spans"]])


def flagged(texts, name):
    f = sum(1 for t in texts if detect(t))
    print(f"{name}: {f} of {len(texts)} flagged ({100.0 * f / len(texts):.2f} %)")


print()
flagged([ex["text"] for ex in pres if not ex["spans"]], "presidio records with none of these kinds")
clean = [ex["text"] for ex in load(f"{data}/clean.jsonl")]
flagged(clean, "real customer queries (Banking77 + NLU++)")
tickets = [ex["text"] for ex in load(f"{dump}/tickets.jsonl")]
flagged(tickets, "tickets with order/tracking/invoice numbers, dates, prices, times")

small = tickets[:2000]
kib = sum(len(t.encode()) for t in small) / 1024
start = time.perf_counter()
for t in small:
    detect(t)
ms = (time.perf_counter() - start) * 1000
print(f"\ncost on ticket-sized messages: {ms / kib:.3f} ms per KiB ({ms * 1000 / len(small):.0f} µs a message)")
