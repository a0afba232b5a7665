#!/usr/bin/env python3
"""Summarises the JSON lines of tools/bench/curves.sh as the Markdown tables of
docs/benchmarks.md ("Scale curves"): per curve and point, the range (min–max over the runs) of
deliveries per server CPU-second and of p50 and p99 latency, with the deliveries, the losses
and the load generator's busiest share (near 100 % it, not the server, set the pace); for the
memory curve, KiB per idle connection.

    tools/bench/curves.sh target/release/natter 3 > curves.jsonl
    tools/bench/curves_summary.py curves.jsonl
"""
import json
import sys


def span(values, fmt):
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"


def millions(x):
    return f"{x / 1e6:.2f}M"


def ms(x):
    return f"{x:.2f}"


def count(x):
    return f"{x:,.0f}"


def per_cpu(report):
    # Scheduler statistics (ns) when present, else the coarser /proc/PID/stat ticks.
    return report.get("deliveries_per_server_sched_cpu_s") or report.get("deliveries_per_server_cpu_s")


def bench_load(report):
    wall = max(report.get("send_s") or 0, report.get("wall_s") or 0) * (report.get("bench_threads") or 1)
    return 100 * report["bench_cpu_s"] / wall if wall > 0 else None


def main(path):
    points = {}
    failed = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            run = json.loads(line)
            key = (run["curve"], run["point"])
            if run["report"] is None:
                failed[key] = failed.get(key, 0) + 1
                continue
            points.setdefault(key, {"workload": run["workload"], "reports": []})["reports"].append(run["report"])

    titles = {
        "members": ("Members per room (one room, 10 senders, paced)", "members"),
        "rooms": ("Rooms of 10 members (one sender per room, 90,000 deliveries/s in all)", "rooms"),
    }
    for curve, (title, unit) in titles.items():
        rows = sorted((p, v) for (c, p), v in points.items() if c == curve)
        if not rows:
            continue
        print(f"### {title}\n")
        print(f"| {unit} | workload | runs | deliveries, lost | deliveries per server CPU-s | p50 ms | p99 ms "
              "| bench busy |")
        print("|---|---|---|---|---|---|---|---|")
        for point, v in rows:
            r = v["reports"]
            workload = v["workload"].split(" fanout ", 1)[-1]
            delivered = span([x["delivered"] for x in r], count)
            lost = span([x["lost"] for x in r], count)
            runs = f"{len(r)}" + (f" ({failed[(curve, point)]} failed)" if (curve, point) in failed else "")
            loads = [x for x in map(bench_load, r) if x is not None]
            print(f"| {point:,} | `{workload}` | {runs} | {delivered}, {lost} "
                  f"| {span([x for x in map(per_cpu, r) if x], millions)} "
                  f"| {span([x['latency']['p50_ms'] for x in r], ms)} "
                  f"| {span([x['latency']['p99_ms'] for x in r], ms)} "
                  f"| {span(loads, lambda x: f'{x:.0f} %')} |")
        print()

    rows = sorted((p, v) for (c, p), v in points.items() if c == "memory")
    if rows:
        print("### Memory per idle connection (each in the lobby and #idle)\n")
        print("| connections | runs | opened, failed | KiB per connection | open time s | server CPU s |")
        print("|---|---|---|---|---|---|")
        for point, v in rows:
            r = v["reports"]
            runs = f"{len(r)}" + (f" ({failed[('memory', point)]} failed)" if ("memory", point) in failed else "")
            print(f"| {point:,} | {runs} | {span([x['opened'] for x in r], count)}, "
                  f"{span([x['failed'] for x in r], count)} "
                  f"| {span([x['kib_per_connection'] for x in r if x.get('kib_per_connection') is not None], ms)} "
                  f"| {span([x['open_s'] for x in r], ms)} "
                  f"| {span([x['server_cpu_s'] for x in r if x.get('server_cpu_s') is not None], ms)} |")
        print()
    for (curve, point), n in sorted(failed.items()):
        if (curve, point) not in points:
            print(f"{curve} {point}: all {n} runs failed (see the script's stderr)\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tools/bench/curves_summary.py CURVES.jsonl (the output of tools/bench/curves.sh)")
    main(sys.argv[1])
