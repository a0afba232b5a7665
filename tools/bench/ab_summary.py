#!/usr/bin/env python3
"""Summarises the JSON lines of tools/bench/ab.sh: per binary and workload, the range and the
median of each figure (deliveries per server CPU-second, p99 latency, losses; KiB per idle
connection; registrations per second).

    tools/bench/ab.sh OLD NEW 6 > ab.jsonl; tools/bench/ab_summary.py ab.jsonl
"""
import json
import statistics
import sys


def figures(workload, report):
    if workload == "fanout":
        per_cpu = report.get("deliveries_per_server_sched_cpu_s") or report.get("deliveries_per_server_cpu_s")
        return {
            "M deliveries/server CPU-s": per_cpu / 1e6 if per_cpu else None,
            "server CPU ms": (report.get("server_sched_cpu_s") or 0) * 1000,
            "p99 ms": report["latency"]["p99_ms"],
            "lost": report["lost"],
        }
    if workload in ("idle", "parked"):
        return {"KiB/connection": report.get("kib_per_connection")}
    return {
        "registrations/s": report.get("registrations_per_s"),
        "p99 ms": report["latency"]["p99_ms"],
    }


def main(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            run = json.loads(line)
            for name, value in figures(run["workload"], run["report"]).items():
                if value is not None:
                    rows.setdefault((run["workload"], name), {}).setdefault(run["binary"], []).append(value)
    print("| workload | figure | A (old): range, median | B (new): range, median |")
    print("|---|---|---|---|")
    for (workload, name), by in rows.items():
        cells = []
        for who in ("A", "B"):
            v = by.get(who, [])
            if not v:
                cells.append("-")
                continue
            fmt = (lambda x: f"{x:.2f}") if max(v) < 100 else (lambda x: f"{x:,.0f}")
            cells.append(f"{fmt(min(v))}–{fmt(max(v))}, {fmt(statistics.median(v))} ({len(v)} runs)")
        print(f"| {workload} | {name} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main(sys.argv[1])
