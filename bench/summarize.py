#!/usr/bin/env python3
"""Markdown tables (median and range) from a bench/results/*.jsonl file."""
import json
import re
import statistics
import sys
from collections import defaultdict


def med(values):
    return statistics.median(values) if values else float("nan")


def main(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # human-readable summary lines of the tools
    for r in rows:
        if "note" in r and (r["note"].startswith("machine") or r["note"].startswith("date")):
            print("- " + r["note"])
    print()
    q = [r for r in rows if "store_msgs_per_s" in r]
    if q:
        print("| durable 2 KB appends | median appends/s | range appends/s |")
        print("|---|---|---|")
        cols = [
            ("Sluice store (group commit, avg %.0f per commit)" % med([r["avg_batch"] for r in q]),
             "store_msgs_per_s"),
            ("raw LMDB, the same rows, keys and v7 ids, the same batching (the fair bound)",
             "fair_msgs_per_s"),
            ("raw LMDB, one MDB_APPEND put per message, 1,024 per commit (the physical bound)",
             "physical_msgs_per_s"),
            ("raw LMDB, the same rows, one synced commit per message", "raw_msgs_per_s"),
        ]
        for name, key in cols:
            v = [r[key] for r in q if key in r]
            if v:
                print(f"| {name} | {med(v):,.0f} | {min(v):,.0f}–{max(v):,.0f} |")
        s_ = med([r["store_msgs_per_s"] for r in q])
        if all("fair_msgs_per_s" in r for r in q):
            print(f"\nstore = {100 * s_ / med([r['fair_msgs_per_s'] for r in q]):.0f} % of the fair bound, "
                  f"{100 * s_ / med([r['physical_msgs_per_s'] for r in q]):.0f} % of the physical bound "
                  f"(medians); {s_ / med([r['raw_msgs_per_s'] for r in q]):.0f}x one commit per message\n")
    f = [r for r in rows if "ferry_docs_per_s" in r]
    if f:
        fr = [r["ferry_docs_per_s"] for r in f]
        ap = [r["append_msgs_per_s"] for r in f]
        print(f"| {f[0]['size']}-byte documents, {f[0]['credit_docs']} in flight | median | range |")
        print("|---|---|---|")
        print(f"| ferry: CURVE link + the receiver's durable append | {med(fr):,.0f} docs/s | {min(fr):,.0f}–{max(fr):,.0f} |")
        print(f"| the receiving store's appends alone | {med(ap):,.0f} msgs/s | {min(ap):,.0f}–{max(ap):,.0f} |")
        ratios = [a / b for a, b in zip(fr, ap)]
        print(f"\nferry = {100 * med(fr) / med(ap):.0f} % of the receiving store's append rate (medians; "
              f"per run {100 * min(ratios):.0f}–{100 * max(ratios):.0f} %)\n")
    p = [r for r in rows if "stage" in r]
    if p:
        print("| stage | docs/s per core (median of runs) | min–max | document bytes |")
        print("|---|---|---|---|")
        for r in p:
            print(f"| {r['stage']} | {r['docs_per_s']:,.0f} | {r['min']:,.0f}–{r['max']:,.0f} | {r['document_bytes']} |")
        print()
    for r in rows:
        if "openssl_speed" in r:
            print("openssl speed: " + r["openssl_speed"])
    print()
    groups = defaultdict(list)
    for r in rows:
        label = r.get("label", "")
        if not label:
            continue
        groups[re.sub(r" rep\d+$", "", label)].append(r)
    if groups:
        print("| case | runs ok | msgs/s end to end (median, range) | accept or confirm p50 / p99 ms | end-to-end p50 / p99 ms | sluiced CPU µs/msg |")
        print("|---|---|---|---|---|---|")
        for label, rs in groups.items():
            if "e2e_msgs_per_s" in rs[0]:
                e2e = [r["e2e_msgs_per_s"] for r in rs]
                ok = sum(1 for r in rs if r.get("ok"))
                print(f"| {label} | {ok}/{len(rs)} | {med(e2e):,.0f} ({min(e2e):,.0f}–{max(e2e):,.0f}) | "
                      f"{med([r['accept_p50_ms'] for r in rs]):.1f} / {med([r['accept_p99_ms'] for r in rs]):.1f} | "
                      f"{med([r['e2e_p50_ms'] for r in rs]):.1f} / {med([r['e2e_p99_ms'] for r in rs]):.1f} | "
                      f"{med([r['sluiced_cpu_us_per_msg'] for r in rs]):.0f} |")
            else:
                vals = [r["end_to_end_msgs_per_s"] for r in rs]
                ok = sum(1 for r in rs if r.get("ok"))
                c50 = med([r["confirm_latency_ms"]["p50"] for r in rs])
                c99 = med([r["confirm_latency_ms"]["p99"] for r in rs])
                e50 = med([r["consume_latency_ms"]["p50"] for r in rs])
                e99 = med([r["consume_latency_ms"]["p99"] for r in rs])
                print(f"| {label} | {ok}/{len(rs)} | {med(vals):,.0f} ({min(vals):,.0f}–{max(vals):,.0f}) | "
                      f"{c50:.1f} / {c99:.1f} | {e50:.1f} / {e99:.1f} | — |")


if __name__ == "__main__":
    main(sys.argv[1])
