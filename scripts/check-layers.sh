#!/usr/bin/env bash
# The layering check (DESIGN.md §2): dependencies between the workspace's crates point down only.
#
#   cmd -> server -> api, informers, persist, kubesim -> graph -> model;
#   api, informers, generator (and kubesim's tests) -> rules -> model;
#   server, api -> history -> graph
#
# For every workspace crate the table below says which sibling crates its normal dependencies may
# name, and which external crates it must not depend on. Dev-dependencies may also name anything
# below the crate (what its allowed siblings may name, transitively) and the test-support crates,
# except where a row says `dev_support: False`. A crate missing from the table fails the check: add
# it to the table, in its place in the layering. Reads `cargo metadata --no-deps` (no network).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo metadata --format-version 1 --no-deps --locked | python3 -c '
import json
import sys

# crate: (siblings its normal dependencies may name, external crates it must not depend on)
LAYERS = {
    "astrolabe": ({"astrolabe-server", "astrolabe-api", "astrolabe-informers",
                   "astrolabe-persist", "astrolabe-kubesim", "astrolabe-generator",
                   "astrolabe-history",
                   "astrolabe-graph", "astrolabe-rules", "astrolabe-model"}, set()),
    "astrolabe-server": ({"astrolabe-api", "astrolabe-informers", "astrolabe-persist",
                          "astrolabe-kubesim", "astrolabe-generator", "astrolabe-graph",
                          "astrolabe-history", "astrolabe-rules", "astrolabe-model"}, set()),
    "astrolabe-api": ({"astrolabe-graph", "astrolabe-history", "astrolabe-rules",
                       "astrolabe-model"},
                      {"redis", "kube", "k8s-openapi"}),
    "astrolabe-informers": ({"astrolabe-graph", "astrolabe-rules", "astrolabe-model"}, set()),
    "astrolabe-persist": ({"astrolabe-graph", "astrolabe-model"}, set()),
    "astrolabe-kubesim": ({"astrolabe-generator", "astrolabe-graph", "astrolabe-rules",
                           "astrolabe-model"}, set()),
    "astrolabe-graph": ({"astrolabe-model"},
                        {"tokio", "kube", "redis", "axum", "k8s-openapi"}),
    "astrolabe-history": ({"astrolabe-graph", "astrolabe-model"},
                          {"tokio", "kube", "redis", "axum", "k8s-openapi"}),
    "astrolabe-rules": ({"astrolabe-model"}, set()),
    "astrolabe-generator": ({"astrolabe-rules", "astrolabe-model"}, set()),
    # Test support, used only as a dev-dependency (see TEST_SUPPORT).
    "astrolabe-testkit": ({"astrolabe-kubesim", "astrolabe-persist", "astrolabe-generator",
                           "astrolabe-graph", "astrolabe-model"}, set()),
    "astrolabe-model": (set(), set()),
}
# Crates whose dev-dependencies name no sibling at all.
NO_DEV_SUPPORT = {"astrolabe-model"}
# Crates any other crate may name in its dev-dependencies (fixtures, the emulator, clusters).
TEST_SUPPORT = {"astrolabe-testkit", "astrolabe-kubesim", "astrolabe-generator"}
# Crates no crate may name in its normal dependencies.
DEV_ONLY = {"astrolabe-testkit"}


def below(name):
    """Every sibling reachable from `name` through the table, not `name` itself."""
    seen, todo = set(), list(LAYERS[name][0])
    while todo:
        crate = todo.pop()
        if crate not in seen:
            seen.add(crate)
            todo.extend(LAYERS.get(crate, (set(), set()))[0])
    return seen


meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
packages = [p for p in meta["packages"] if p["id"] in members]
ours = {p["name"] for p in packages}
errors = []
for p in sorted(packages, key=lambda p: p["name"]):
    name = p["name"]
    if name not in LAYERS:
        errors.append(f"{name}: not in the layering table of scripts/check-layers.sh; "
                      "add it there, with the siblings it may depend on (DESIGN.md §2)")
        continue
    allowed, forbidden = LAYERS[name]
    for dep in p["dependencies"]:
        dep_name, kind = dep["name"], dep["kind"] or "normal"
        if dep_name == name:
            continue
        if kind == "dev":
            if dep_name in forbidden:
                continue  # forbidden externals concern what the crate ships
            if dep_name in ours:
                ok = name not in NO_DEV_SUPPORT and (
                    dep_name in allowed or dep_name in below(name) or dep_name in TEST_SUPPORT)
                if not ok:
                    errors.append(f"{name} -> {dep_name} (dev-dependency): not below {name} "
                                  "and not a test-support crate")
            continue
        if dep_name in forbidden:
            errors.append(f"{name} -> {dep_name} ({kind}): {name} must not depend on {dep_name}")
        elif dep_name in DEV_ONLY:
            errors.append(f"{name} -> {dep_name} ({kind}): {dep_name} is a dev-dependency only")
        elif dep_name in ours and dep_name not in allowed:
            may = ", ".join(sorted(allowed)) or "no sibling"
            errors.append(f"{name} -> {dep_name} ({kind}): breaks the layering; "
                          f"{name} may depend on {may}")

if errors:
    print("check-layers: dependencies that break DESIGN.md §2:", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
print(f"check-layers: {len(packages)} crates follow the layering")
'
