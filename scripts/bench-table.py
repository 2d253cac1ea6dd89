#!/usr/bin/env python3
"""Turn the output of scripts/bench.sh (target/bench-results.txt) into the markdown table of
docs/benchmarks.md: one row per figure listed in FIGURES below, with the baseline measured in the
same run, the target, MET/MISSED, the command and the date of the run.

    scripts/bench-table.py [RESULTS]                 print the table (and the other figures)
    scripts/bench-table.py RESULTS --write-docs DOC  replace the table between the markers in DOC
    scripts/bench-table.py --check                   render the saved sample and compare it with
                                                     scripts/testdata/bench-table.expected.md

It reads three kinds of lines:
- the figure lines every bench prints through `astrolabe_persist::testing::figure`:
  `NAME VALUE UNIT [RATIOx BASELINE (target TARGET) MET|MISSED]`;
- criterion's `NAME time: [low mid high]` and `thrpt: [low mid high]` (the middle value, criterion's
  point estimate, is the figure); the graph memory bench's `graph memory: ...` lines;
- the HTTP bench's rows (`ENDPOINT LOAD CONNS REQ/S P50 P99 MAX KIB CPU TARGET RESULT`).
Sections start with `===== BENCH: COMMAND` (scripts/bench.sh writes them); the run's date is on
the `===== run: DATE ...` line.
"""

import os
import re
import sys

# The figures of the table, in order: (bench, figure name as printed, what it is, the figure
# that is its baseline in the same run or None, the target when the line does not carry one).
# A target is "<= N UNIT" or ">= N UNIT"; None means no target (the row reads "—").
FIGURES = [
    ("memory", "graph/bytes_per_resource", "Graph memory per resource, 100k cluster (counting allocator)", None, "<= 1024 B"),
    ("memory", "graph/shared_bytes_per_resource", "… as the server keeps it (`SharedGraph`, two copies)", None, None),
    ("memory", "graph/bytes_per_custom_object_metadata", "Graph memory per custom object, metadata-only (100k Widgets)", None, None),
    ("memory", "graph/bytes_per_custom_object_rules", "Graph memory per custom object with two rule references (100k Certificates)", None, None),
    ("rules_eval", "rules/evaluate_httproute-7-backends", "Rule evaluation, the built-in pack on an HTTPRoute with 7 backendRefs", None, None),
    ("rules_eval", "rules/evaluate_certificate", "Rule evaluation, the built-in pack on a Certificate", None, None),
    ("graph", "apply/initial_load_100k", "Apply: initial load of the 100k cluster, one core", None, ">= 500000 changes/s"),
    ("graph", "apply/pod_updates", "Apply: steady-state Pod updates, one core", None, ">= 500000 changes/s"),
    ("graph", "apply/pod_delete_recreate", "Apply: delete and re-create every Pod", None, None),
    ("graph", "query_100k/neighbors_depth2_pod", "Query: neighbours depth 2 of a Pod", None, "<= 50 µs"),
    ("graph", "query_100k/neighbors_depth2_deployment", "Query: neighbours depth 2 of a Deployment", None, "<= 50 µs"),
    ("graph", "query_100k/namespace_subgraph", "Query: one namespace's graph (`compat_graph`)", None, "<= 1 ms"),
    ("graph", "query_100k/impact_deployment", "Query: impact of a Deployment", None, None),
    ("initial_sync", "initial_sync/astrolabe_objects_per_s", "Initial sync of the 100k cluster through kube-rs, informers to graph", "initial_sync/reflector_objects_per_s", None),
    ("initial_sync", "churn/changes_applied_per_s", "Steady-state churn applied (rolling updates, scaling, edits)", "churn/emulator_writes_per_s", None),
    ("initial_sync", "pod_updates/changes_applied_per_s", "Pod status updates applied, as fast as the emulator writes", "pod_updates/emulator_writes_per_s", None),
    ("custom_sync", "custom_sync/astrolabe_metadata_objects_per_s", "Initial sync of 100k custom objects (Certificates), no rules: metadata-only, to graph", "custom_sync/metadata_reflector_objects_per_s", None),
    ("custom_sync", "custom_sync/astrolabe_rules_objects_per_s", "… the same with the built-in rules: whole objects through the rules, to graph", "custom_sync/dynamic_reflector_objects_per_s", None),
    ("restart", "restart/restart_seconds", "Restart to ready from Redis: snapshot + 100k tail changes", None, None),
    ("restart", "restart/restart_vs_relist", "… the same restart against a full relist", "restart/relist_seconds", None),
    ("history", "history/memory/at_1h_uncached_ms", "History, in-memory log: `at=` one hour back, uncached (100k cluster, an hour at 100 changes/s)", "history/memory/restart_ms", None),
    ("history", "history/memory/at_1h_cached_ms", "… the same point cached, one namespace's graph read from it", "history/memory/live_query_ms", None),
    ("history", "history/memory/diff_10min_namespace_ms", "… `diff` of one namespace across the last 10 minutes", "history/memory/diff_clone_ms", None),
    ("history", "history/redis/at_1h_uncached_ms", "History, Redis log: `at=` one hour back, uncached", "history/redis/restart_ms", None),
    ("history", "history/redis/at_1h_cached_ms", "… the same point cached, one namespace's graph read from it", "history/redis/live_query_ms", None),
    ("history", "history/redis/diff_10min_namespace_ms", "… `diff` of one namespace across the last 10 minutes", "history/redis/diff_clone_ms", None),
    ("history", "history/redis/bytes_per_change", "History: Redis bytes per retained Pod status change", "history/redis/pod_json_bytes", None),
    ("replicas", "replicas/follower_lag_p99_1k_ms", "Replicas: follower lag p99 at 1,000 changes/s (100k cluster, leader to follower applied)", "replicas/leader_append_p99_1k_ms", None),
    ("replicas", "replicas/follower_lag_p99_5k_ms", "… at 5,000 changes/s", "replicas/leader_append_p99_5k_ms", None),
    ("replicas", "replicas/query_two_replicas_per_s", "Replicas: query throughput, neighbours depth 2, 16 clients sending to two replicas in turn (one machine, 2 cores)", "replicas/query_one_replica_per_s", None),
    ("failover", "replicas/failover_s", "Replicas: failover, leader killed to the new leader's first append (lease 5 s; median of 3)", None, None),
    ("controllers", "emulator/controllers_deployments_per_s", "Emulator with controllers: Deployments POSTed (8 clients) and settled into ReplicaSets and Ready Pods (300 × 3 replicas)", "emulator/bare_deployments_per_s", None),
    ("check", "check/check_1000_objects_ms", "`astrolabe check` of 1,000 objects (50 applications): parse, apply, settle, graph, findings", "check/parse_1000_objects_ms", None),
    ("persist", "appends/writer_durable_per_s", "Durable appends to the Redis Stream (default writer)", "appends/redis_benchmark_xadd_per_s", None),
    ("persist", "snapshot/total_ms", "Snapshot, cold (everything encoded): copy, encode, zstd, upload, commit", "snapshot/raw_set_ms", None),
    ("persist", "snapshot/periodic/total_ms", "Snapshot, periodic (after 100k Pod updates; changed parts encoded)", "snapshot/periodic/raw_set_ms", None),
    ("persist", "stall/read_lock_wait_max_ms", "Longest read wait while snapshots run back to back", None, None),
    ("persist", "stall/lock_hold_slice_max_ms", "Longest read-lock hold of one slice of a snapshot copy", "stall/lock_hold_whole_copy_max_ms", None),
    ("http_load", "http/neighbors depth=2 (Pods)/paced/p99_ms", "HTTP: neighbours depth 2 of a Pod, p99 at 2,000 req/s", None, None),
    ("http_load", "http/graph namespace/paced/p99_ms", "HTTP: one namespace's graph, p99 at 500 req/s", None, None),
    ("http_load", "http/neighbors depth=2 (Pods)/saturated/req_per_s", "HTTP: neighbours depth 2, saturated (16 connections)", None, None),
    ("http_load", "http/graph namespace/saturated/req_per_s", "HTTP: one namespace's graph, saturated", None, None),
]

BEGIN, END = "<!-- bench-table -->", "<!-- /bench-table -->"
HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "testdata", "bench-results.sample.txt")
EXPECTED = os.path.join(HERE, "testdata", "bench-table.expected.md")

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SECTION = re.compile(r"^===== (\S+): (.*)$")
NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|NaN|inf)"
FIGURE = re.compile(
    rf"^(?P<name>[a-z_]+/\S+)\s+(?P<value>{NUM})\s+(?P<unit>\S+)"
    r"(?:\s+(?P<ratio>" + NUM + r")x (?P<baseline>.*) \(target (?P<target>.*)\) (?P<verdict>MET|MISSED))?\s*$"
)
CRITERION = re.compile(r"^(?P<name>\S*)\s+(?P<what>time|thrpt):\s+\[(?P<values>[^\]]*)\]")
MEMORY = re.compile(r"^graph memory: (?P<n>\d+) resources(?P<shared> as a SharedGraph)?.*?: (?P<per>[0-9.]+) bytes/resource")
HTTP = re.compile(
    r"^(?P<endpoint>\S.*?)\s+(?P<load>paced|saturated|1 conn)\s+(?P<conns>\d+)\s+(?P<rps>[0-9.]+)"
    r"\s+(?P<p50>[0-9.]+)\s+(?P<p99>[0-9.]+)\s+(?P<max>[0-9.]+)\s+(?P<kib>[0-9.]+)\s+(?P<cpu>\S+)"
    r"\s+(?P<target>\(none\)|p99 <= .*?)\s+(?P<result>PASS|FAIL|\(within\)|\(over\)|reported)\s*$"
)

# Units a target or a criterion figure may be written in, as (base unit, factor).
UNITS = {
    "ps": ("s", 1e-12), "ns": ("s", 1e-9), "µs": ("s", 1e-6), "us": ("s", 1e-6), "ms": ("s", 1e-3), "s": ("s", 1.0),
    "elem/s": ("/s", 1.0), "Kelem/s": ("/s", 1e3), "Melem/s": ("/s", 1e6), "Gelem/s": ("/s", 1e9),
    "changes/s": ("/s", 1.0), "objects/s": ("/s", 1.0), "writes/s": ("/s", 1.0), "XADD/s": ("/s", 1.0),
    "req/s": ("/s", 1.0), "B": ("B", 1.0),
}


class Figure:
    """One measured figure: value and unit, and what the bench said about it, if anything."""

    def __init__(self, value, unit, ratio=None, baseline=None, target=None, verdict=None):
        self.value, self.unit = value, unit
        self.ratio, self.baseline, self.target, self.verdict = ratio, baseline, target, verdict


def parse(text):
    """Returns ({(bench, name): Figure}, {bench: command}, run date or None)."""
    figures, commands, date = {}, {}, None
    bench, pending = None, None
    for raw in text.splitlines():
        # A terminal gets colours and lines overwritten after "\r"; keep what the line ends as.
        line = ANSI.sub("", raw).split("\r")[-1].rstrip()
        m = SECTION.match(line)
        if m:
            if m.group(1) == "run":
                date = m.group(2).split()[0]
            else:
                bench, commands[m.group(1)] = m.group(1), m.group(2)
            pending = None
            continue
        m = FIGURE.match(line)
        if m:
            figures[(bench, m["name"])] = Figure(
                float(m["value"]), m["unit"],
                float(m["ratio"]) if m["ratio"] else None, m["baseline"], m["target"], m["verdict"])
            continue
        m = MEMORY.match(line)
        if m:
            # One line per cluster size; the last (the largest) is the figure.
            name = "graph/shared_bytes_per_resource" if m["shared"] else "graph/bytes_per_resource"
            figures[(bench, name)] = Figure(float(m["per"]), "B")
            continue
        m = CRITERION.match(line)
        if m:
            name = m["name"] or pending
            pending = name
            parts = m["values"].split()
            # "[low unit mid unit high unit]": the middle pair is the point estimate.
            if len(parts) == 6 and name:
                value, unit = float(parts[2]), parts[3]
                if m["what"] == "thrpt":
                    base, factor = UNITS[unit]
                    figures[(bench, name)] = Figure(value * factor, "changes/s")
                elif (bench, name) not in figures:
                    figures[(bench, name)] = Figure(value, unit)
            continue
        m = HTTP.match(line)
        if m:
            endpoint = m["endpoint"].lstrip("/")
            if endpoint.startswith("graph namespace="):
                endpoint = "graph namespace"
            key = f"http/{endpoint}/{m['load']}"
            verdict = {"PASS": "MET", "FAIL": "MISSED"}.get(m["result"])
            target = m["target"] if m["target"] != "(none)" else None
            figures[(bench, key + "/p99_ms")] = Figure(float(m["p99"]), "ms", target=target, verdict=verdict)
            figures[(bench, key + "/p50_ms")] = Figure(float(m["p50"]), "ms")
            figures[(bench, key + "/req_per_s")] = Figure(float(m["rps"]), "req/s")
            continue
        if line and not line.startswith((" ", "Benchmarking", "Found", "Warning")):
            pending = line.split()[0]
    return figures, commands, date


def number(value):
    """A value as the table shows it: thousands separated, three significant digits below 1000."""
    if value != value:
        return "NaN"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def judge(figure, target):
    """MET/MISSED of `figure` against a target written "<= N UNIT" or ">= N UNIT"."""
    op, amount, unit = target.split(maxsplit=2)
    want_base, want_factor = UNITS.get(unit, (unit, 1.0))
    have_base, have_factor = UNITS.get(figure.unit, (figure.unit, 1.0))
    if want_base != have_base:
        return "?"
    have, want = figure.value * have_factor, float(amount) * want_factor
    return "MET" if (have <= want if op == "<=" else have >= want) else "MISSED"


def render(figures, commands, date):
    """The table's markdown and the list of figures the table does not show."""
    rows = [
        "| Figure | Today | Baseline, same run (ratio) | Target | | Command | Run |",
        "|---|---|---|---|---|---|---|",
    ]
    shown = set()
    for bench, name, what, baseline_name, target in FIGURES:
        fig = figures.get((bench, name))
        command = f"`{commands[bench]}`" if bench in commands else f"(`{bench}` not run)"
        if fig is None:
            rows.append(f"| {what} | not in this run | | | | {command} | |")
            continue
        shown.add((bench, name))
        baseline = "—"
        base = figures.get((bench, baseline_name)) if baseline_name else None
        if fig.baseline:
            baseline = fig.baseline
            if base:
                shown.add((bench, baseline_name))
                baseline += f": {number(base.value)} {base.unit}"
            baseline += f" ({fig.ratio:.2f}×)"
        elif base and base.value:
            # A figure printed without its comparison: the ratio to the baseline figure.
            shown.add((bench, baseline_name))
            baseline = f"{number(base.value)} {base.unit} ({fig.value / base.value:.2f}×)"
        verdict, shown_target = fig.verdict or "—", fig.target or "—"
        if target and not fig.target:
            op, amount, unit = target.split(maxsplit=2)
            verdict, shown_target = judge(fig, target), f"{op} {number(float(amount))} {unit}"
        shown_target = re.sub(r"(\d)x\b", "\\1×", shown_target.replace("<=", "≤").replace(">=", "≥"))
        rows.append(
            f"| {what} | {number(fig.value)} {fig.unit} | {baseline} | {shown_target} | {verdict} "
            f"| {command} | {date or '?'} |"
        )
    other = [
        f"- `{bench}` {name}: {number(fig.value)} {fig.unit}"
        for (bench, name), fig in sorted(figures.items(), key=lambda kv: (str(kv[0][0]), kv[0][1]))
        if (bench, name) not in shown
    ]
    return "\n".join(rows) + "\n", other


def write_docs(path, table):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"{path}: no {BEGIN} ... {END} markers")
    text = text[: start + len(BEGIN)] + "\n" + table + text[end:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main(args):
    if args[:1] == ["--check"]:
        with open(SAMPLE, encoding="utf-8") as f:
            figures, commands, date = parse(f.read())
        table, other = render(figures, commands, date)
        got = table + "\nOther figures:\n" + "\n".join(other) + "\n"
        with open(EXPECTED, encoding="utf-8") as f:
            want = f.read()
        missing = [name for bench, name, *_ in FIGURES if (bench, name) not in figures]
        if missing or got != want:
            sys.stdout.write(got)
            sys.exit(f"bench-table check failed: missing {missing}" if missing else
                     f"bench-table check failed: the output above differs from {EXPECTED}")
        print(f"bench-table: the sample renders as expected ({len(FIGURES)} rows)")
        return
    results = args[0] if args and not args[0].startswith("--") else "target/bench-results.txt"
    with open(results, encoding="utf-8") as f:
        figures, commands, date = parse(f.read())
    table, other = render(figures, commands, date)
    if "--write-docs" in args:
        i = args.index("--write-docs")
        write_docs(args[i + 1] if i + 1 < len(args) else "docs/benchmarks.md", table)
    sys.stdout.write(table)
    if other:
        print("\nOther figures (printed by the benches, not in the table):\n" + "\n".join(other))


if __name__ == "__main__":
    main(sys.argv[1:])
