#!/usr/bin/python3
"""validate.py — checks ClusterPlex's deployment files offline.

  validate.py --repo DIR [--render NAME=FILE[:SECRET] ...] [--units DIR]
              [--results FILE]

Parses every compose, Swarm and Kubernetes file under docker/ (and the Helm
renders passed with --render) and checks what a cluster would only find out
at deploy time:

  compose, stack  the keys Compose/Swarm know, services referenced by
                  depends_on exist, named volumes are declared, ports and
                  `${VAR...}` interpolations are well formed, PMS gets
                  /dev/fuse and SYS_ADMIN unless fuse is off, the stack
                  matches ClusterPlex's example (service names, ports,
                  health probes, global workers updated start-first, the
                  same media paths on PMS and workers), every variable is
                  documented;
  Kubernetes      the fields the API server requires, selectors that
                  match their pod template's labels, anti-affinity that
                  selects real pods, Services whose selectors and target
                  ports exist, probes on /health at the port the program
                  listens on (LISTENING_PORT), volumes that are declared,
                  Secrets and ConfigMaps that exist or are named as
                  existing, DNS-1123 names and valid label values;
  Helm values     every variable the binaries read (cpx_env_* calls in
                  the sources) has a key under its component's env;
  Grafana         the dashboard JSON: unique panel ids, a 24-column grid
                  without overlaps, queries on clusterplex_ metrics only,
                  and only metrics that docs/dispatcher.md names once it
                  exists;
  systemd         `systemd-analyze verify` of every unit (--units DIR has
                  them rewritten to this build's binaries).

Prints one line per check and a closing "N passed, N failed"; exit 1 on
any failure.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys

import yaml

RESULTS = {"passed": 0, "failed": 0}


def check(name, problems):
    """Records one check; `problems` is a list of strings (empty: passed)."""
    if problems:
        RESULTS["failed"] += 1
        print(f"not ok - {name}")
        for p in problems:
            print(f"    {p}")
    else:
        RESULTS["passed"] += 1
        print(f"ok - {name}")


# --- documentation ---------------------------------------------------------

VAR_RE = re.compile(r"`([A-Z][A-Z0-9_]{2,})`")
# Variables that belong to linuxserver.io's images, not to ClusterPlex.
LSIO_VARS = {"PUID", "PGID", "TZ", "VERSION", "PLEX_CLAIM", "DOCKER_MODS"}


def documented_vars(repo):
    """Every `NAME` in backticks in the project's markdown."""
    names = set()
    files = glob.glob(os.path.join(repo, "docs", "*.md"))
    files += [os.path.join(repo, "README.md"),
              os.path.join(repo, "docker", "README.md")]
    for f in files:
        if os.path.exists(f):
            names |= set(VAR_RE.findall(open(f).read()))
    return names


def source_vars(repo):
    """{part: {NAME}} for every variable a binary reads by name."""
    # A string literal that is exactly a variable's name, first argument of
    # a call (cpx_env_*(), getenv(), a KNOB() macro) or first field of a
    # table entry; a name quoted inside a message does not count.
    pat = re.compile(r'[({]\s*"((?:CLUSTERPLEX|ORCHESTRATOR|TRANSCODE|TRANSCODER|'
                     r'PMS|LISTENING|STAT|WORKER|FFMPEG)_[A-Z0-9_]+)"')
    out = {}
    for part in ("common", "shim", "dispatcher", "agent", "fuse"):
        names = set()
        for f in glob.glob(os.path.join(repo, part, "*.c")):
            names |= set(pat.findall(open(f, errors="replace").read()))
        out[part] = names
    return out


# docs/<page>.md whose variables table belongs to one image's component,
# by the page name's first word (agent-serve.md, shim.md, ...).
DOC_COMPONENT = {"dispatcher": "dispatcher", "agent": "worker",
                 "shim": "pms", "pool": "pms", "fuse": "pms"}


def table_vars(repo):
    """{component: {NAME}} from the first cell of each part's table rows."""
    out = {}
    for f in sorted(glob.glob(os.path.join(repo, "docs", "*.md"))):
        page = re.split(r"[-_.]", os.path.basename(f))[0]
        comp = DOC_COMPONENT.get(page)
        if comp is None:
            continue
        for line in open(f):
            cells = line.split("|")
            if line.startswith("|") and len(cells) > 2:
                out.setdefault(comp, set()).update(VAR_RE.findall(cells[1]))
    return out


# What a user configures, as opposed to what PMS or sshd set for a process.
CONFIG_VAR = re.compile(r"^(CLUSTERPLEX_|ORCHESTRATOR_URL$|TRANSCODE|PMS_|"
                        r"LISTENING_PORT$|STAT_CPU_INTERVAL$|"
                        r"WORKER_SELECTION_STRATEGY$|FFMPEG_HWACCEL$)")


# --- compose and stack -----------------------------------------------------

COMPOSE_TOP = {"version", "name", "services", "volumes", "networks",
               "secrets", "configs"}
SERVICE_KEYS = {
    "image", "build", "restart", "environment", "env_file", "devices",
    "cap_add", "cap_drop", "security_opt", "volumes", "ports", "depends_on",
    "healthcheck", "deploy", "hostname", "read_only", "user", "command",
    "entrypoint", "networks", "secrets", "configs", "labels", "tmpfs",
    "ulimits", "network_mode", "container_name", "stop_grace_period",
    "shm_size", "group_add", "privileged", "init", "working_dir",
}
SWARM_UNSUPPORTED = {"build", "devices", "depends_on", "container_name",
                     "restart", "security_opt", "privileged"}
INTERP = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}|"
                    r"\$([A-Za-z_][A-Za-z0-9_]*)|(\$)")
PORT_RE = re.compile(r"^(?:[\d.]+:)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:/(?:tcp|udp))?$")


def walk_strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from walk_strings(k)
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)


def interpolation_problems(doc):
    out = []
    for s in walk_strings(doc):
        for m in INTERP.finditer(s):
            if m.group(3):
                out.append(f"stray '$' in {s!r} (write $$ for a literal $)")
        if s.count("${") != s.count("}") and "{{" not in s:
            out.append(f"unbalanced ${{...}} in {s!r}")
    return out


def env_map(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return env


def volume_target(v):
    if isinstance(v, dict):
        return v.get("source"), v.get("target")
    # ${VAR:-default} holds colons of its own.
    parts = re.sub(r"\$\{[^}]*\}", "$VAR", v).split(":")
    if len(parts) == 1:
        return None, parts[0]
    return parts[0], parts[1]


def compose_problems(doc, stack, known_vars):
    out = []
    for k in doc:
        if k not in COMPOSE_TOP and not k.startswith("x-"):
            out.append(f"unknown top-level key {k!r}")
    services = doc.get("services") or {}
    if not services:
        out.append("no services")
    declared = set((doc.get("volumes") or {}).keys())
    for name, svc in services.items():
        where = f"service {name}"
        for k in svc:
            if k not in SERVICE_KEYS:
                out.append(f"{where}: unknown key {k!r}")
            if stack and k in SWARM_UNSUPPORTED:
                out.append(f"{where}: {k!r} is ignored by docker stack deploy")
        if "image" not in svc and "build" not in svc:
            out.append(f"{where}: neither image nor build")
        for p in svc.get("ports") or []:
            if not PORT_RE.match(str(p)):
                out.append(f"{where}: bad port {p!r}")
        for v in svc.get("volumes") or []:
            src, dst = volume_target(v)
            if not dst or not dst.startswith("/"):
                out.append(f"{where}: volume {v!r} has no absolute target")
            if src and not re.match(r"^[./~$]", src) and src not in declared:
                out.append(f"{where}: named volume {src!r} is not declared")
        deps = svc.get("depends_on") or []
        for d in (deps.keys() if isinstance(deps, dict) else deps):
            if d not in services:
                out.append(f"{where}: depends_on unknown service {d!r}")
        env = env_map(svc)
        for var, val in env.items():
            if val is not None and not isinstance(val, (str, int, float, bool)):
                out.append(f"{where}: {var} is not a scalar")
            if isinstance(val, bool):
                out.append(f"{where}: {var} is a YAML boolean; quote it")
            if var not in known_vars and var not in LSIO_VARS:
                out.append(f"{where}: variable {var} is documented nowhere")
        hc = svc.get("healthcheck")
        if hc and not isinstance(hc.get("test"), (list, str)):
            out.append(f"{where}: healthcheck without a test")
    out += interpolation_problems(doc)
    return out


def shared_transcode(svc):
    v = str(env_map(svc).get("CLUSTERPLEX_SHARED_TRANSCODE", "false"))
    return v.strip('"').lower() in ("true", "1", "yes", "on")


def fuse_problems(doc):
    """PMS mounts clusterplex-fuse unless CLUSTERPLEX_SHARED_TRANSCODE."""
    out = []
    plex = doc["services"].get("plex")
    if plex is None:
        return ["no service named plex"]
    if shared_transcode(plex):
        return []
    devices = [str(d).split(":")[0] for d in plex.get("devices") or []]
    if "/dev/fuse" not in devices:
        out.append("plex: fuse is on but /dev/fuse is not passed")
    if "SYS_ADMIN" not in (plex.get("cap_add") or []):
        out.append("plex: fuse is on but SYS_ADMIN is not added")
    return out


def health_test_port(svc):
    """(port, path) of an http-health healthcheck, or None."""
    test = (svc.get("healthcheck") or {}).get("test")
    if isinstance(test, list) and len(test) >= 3 and test[1].endswith("http-health"):
        return str(test[2]), test[3] if len(test) > 3 else "/health"
    return None


def stack_problems(doc):
    """The stack keeps ClusterPlex's example's shape (docker/README.md)."""
    out = []
    s = doc.get("services") or {}
    for n in ("plex", "plex-orchestrator", "plex-worker"):
        if n not in s:
            out.append(f"service {n} missing")
    if out:
        return out
    orch, worker, plex = s["plex-orchestrator"], s["plex-worker"], s["plex"]
    oenv, wenv = env_map(orch), env_map(worker)
    if str(oenv.get("LISTENING_PORT")) != "3500":
        out.append("plex-orchestrator: LISTENING_PORT is not 3500")
    if health_test_port(orch) != ("3500", "/health"):
        out.append("plex-orchestrator: health check is not /health on 3500")
    if "3500:3500" not in [str(p) for p in orch.get("ports") or []]:
        out.append("plex-orchestrator: port 3500 not published")
    if (worker.get("deploy") or {}).get("mode") != "global":
        out.append("plex-worker: deploy.mode is not global")
    order = ((worker.get("deploy") or {}).get("update_config") or {}).get("order")
    if order != "start-first":
        out.append("plex-worker: update_config.order is not start-first")
    if str(wenv.get("LISTENING_PORT")) != "3501":
        out.append("plex-worker: LISTENING_PORT is not 3501")
    if health_test_port(worker) != ("3501", "/health"):
        out.append("plex-worker: health check is not /health on 3501")
    for n, svc in (("plex", plex), ("plex-worker", worker)):
        for v in ("PUID", "PGID", "TZ"):
            if v not in env_map(svc):
                out.append(f"{n}: {v} missing")
    media = lambda svc: {volume_target(v)[1] for v in svc.get("volumes") or []
                         if volume_target(v)[1].startswith("/data")}
    if media(plex) != media(worker) or not media(plex):
        out.append(f"media paths differ: plex {sorted(media(plex))}, "
                   f"plex-worker {sorted(media(worker))}")
    if shared_transcode(plex):
        tp = lambda svc: {volume_target(v)[0] for v in svc.get("volumes") or []
                          if volume_target(v)[1] == "/transcode"}
        if not tp(plex) or tp(plex) != tp(worker):
            out.append("fuse is off, so PMS and workers must share /transcode")
    return out


# --- Kubernetes --------------------------------------------------------------

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
WORKLOADS = {"Deployment", "DaemonSet", "StatefulSet"}
API = {"Deployment": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1",
       "Service": "v1", "Secret": "v1", "ConfigMap": "v1",
       "PersistentVolumeClaim": "v1",
       "ServiceMonitor": "monitoring.coreos.com/v1"}
# Where each program listens: the env variable that sets it, and its default.
LISTEN_VARS = {"dispatcher": ("LISTENING_PORT", 3500),
               "worker": ("LISTENING_PORT", 3501),
               "pms": ("PMS_PORT", 32400)}


def subset(sel, labels):
    return all(labels.get(k) == v for k, v in (sel or {}).items())


def pod_of(obj):
    return obj["spec"]["template"]


def container_env(c):
    return {e["name"]: e.get("value") for e in c.get("env") or []}


def metadata_problems(obj):
    out = []
    kind = obj.get("kind")
    md = obj.get("metadata") or {}
    name = md.get("name")
    if API.get(kind) and obj.get("apiVersion") != API[kind]:
        out.append(f"{kind} {name}: apiVersion {obj.get('apiVersion')} (want {API[kind]})")
    if not name or len(name) > 63 or not DNS1123.match(name):
        out.append(f"{kind}: bad or missing metadata.name {name!r}")
    for where, labels in (("metadata", md.get("labels")),
                          ("template", obj.get("spec", {}).get("template", {})
                           .get("metadata", {}).get("labels"))):
        for k, v in (labels or {}).items():
            if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
                out.append(f"{kind} {name}: {where} label {k}={v!r} is not a valid value")
    return out


def port_names(pod):
    names, numbers = set(), set()
    for c in pod["spec"].get("containers") or []:
        for p in c.get("ports") or []:
            numbers.add(p["containerPort"])
            if "name" in p:
                names.add(p["name"])
    return names, numbers


def resolve_port(pod, port):
    """The container port number a probe or Service port refers to."""
    for c in pod["spec"]["containers"]:
        for p in c.get("ports") or []:
            if port in (p.get("name"), p["containerPort"]):
                return p["containerPort"]
    return None


def workload_problems(obj, secrets, configmaps, claims):
    out = []
    kind, name = obj["kind"], obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    where = f"{kind} {name}"
    sel = (spec.get("selector") or {}).get("matchLabels")
    tpl = spec.get("template") or {}
    labels = (tpl.get("metadata") or {}).get("labels") or {}
    if not sel:
        out.append(f"{where}: no spec.selector.matchLabels")
    elif not subset(sel, labels):
        out.append(f"{where}: selector {sel} does not match template labels {labels}")
    if kind == "StatefulSet" and not spec.get("serviceName"):
        out.append(f"{where}: StatefulSet without serviceName")
    pspec = tpl.get("spec") or {}
    containers = pspec.get("containers") or []
    if not containers:
        out.append(f"{where}: no containers")
    vols = [v["name"] for v in pspec.get("volumes") or []]
    if len(vols) != len(set(vols)):
        out.append(f"{where}: duplicate volume names {vols}")
    for v in pspec.get("volumes") or []:
        if "secret" in v and v["secret"]["secretName"] not in secrets:
            out.append(f"{where}: volume {v['name']} uses unknown Secret {v['secret']['secretName']}")
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            out.append(f"{where}: volume {v['name']} uses unknown ConfigMap")
        pvc = v.get("persistentVolumeClaim")
        if pvc and pvc["claimName"] not in claims:
            out.append(f"{where}: volume {v['name']} claims unknown PVC {pvc['claimName']}")
    component = labels.get("app.kubernetes.io/component")
    for c in containers:
        cw = f"{where} container {c.get('name')}"
        if not c.get("name") or not c.get("image"):
            out.append(f"{cw}: name and image are required")
        envnames = [e["name"] for e in c.get("env") or []]
        dup = {n for n in envnames if envnames.count(n) > 1}
        if dup:
            out.append(f"{cw}: env set twice: {sorted(dup)}")
        for e in c.get("env") or []:
            if "value" in e and not isinstance(e["value"], str):
                out.append(f"{cw}: env {e['name']} value is not a string")
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"] not in secrets:
                out.append(f"{cw}: env {e['name']} from unknown Secret {ref['name']}")
        for m in c.get("volumeMounts") or []:
            if m["name"] not in vols:
                out.append(f"{cw}: mount {m['name']} has no volume")
        env = container_env(c)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = (c.get(probe) or {}).get("httpGet")
            if not p:
                continue
            num = resolve_port(tpl, p["port"])
            if num is None:
                out.append(f"{cw}: {probe} port {p['port']} is not a container port")
            if component in LISTEN_VARS:
                var, default = LISTEN_VARS[component]
                want = int(env.get(var) or default)
                if num != want:
                    out.append(f"{cw}: {probe} on port {num}, but {var} makes "
                               f"it listen on {want}")
                want_path = "/identity" if component == "pms" else "/health"
                if p["path"] != want_path:
                    out.append(f"{cw}: {probe} path {p['path']} (want {want_path})")
        if component in ("dispatcher", "worker") and not c.get("livenessProbe"):
            out.append(f"{cw}: no livenessProbe")
    return out


def affinity_problems(obj, pods):
    """Every (anti-)affinity term must select pods that exist."""
    out = []
    aff = pod_of(obj)["spec"].get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = aff.get(kind) or {}
        terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [t["podAffinityTerm"] for t in
                  a.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        for t in terms:
            sel = (t.get("labelSelector") or {}).get("matchLabels") or {}
            if not t.get("topologyKey"):
                out.append(f"{obj['metadata']['name']}: {kind} term without topologyKey")
            if not sel or not any(subset(sel, lab) for lab in pods.values()):
                out.append(f"{obj['metadata']['name']}: {kind} selector {sel} "
                           "matches no pod template")
    return out


def service_problems(svc, workloads):
    out = []
    name = svc["metadata"]["name"]
    sel = svc["spec"].get("selector") or {}
    targets = [w for w in workloads if subset(sel, pod_of(w)["metadata"]["labels"])]
    if not sel or not targets:
        return [f"Service {name}: selector {sel} matches no pod template"]
    for p in svc["spec"].get("ports") or []:
        tp = p.get("targetPort", p["port"])
        for w in targets:
            if resolve_port(pod_of(w), tp) is None:
                out.append(f"Service {name}: targetPort {tp} is not a port of {w['metadata']['name']}")
    return out


def k8s_problems(docs, existing_secret=None):
    docs = [d for d in docs if d]
    out = []
    by_kind = {}
    for d in docs:
        if "kind" not in d or "apiVersion" not in d:
            out.append(f"object without kind/apiVersion: {str(d)[:60]}")
            continue
        by_kind.setdefault(d["kind"], []).append(d)
        out += metadata_problems(d)
    names = lambda k: {o["metadata"]["name"] for o in by_kind.get(k, [])}
    secrets = names("Secret") | ({existing_secret} if existing_secret else set())
    workloads = [d for k in WORKLOADS for d in by_kind.get(k, [])]
    pods = {w["metadata"]["name"]: pod_of(w)["metadata"]["labels"] for w in workloads}
    for w in workloads:
        out += workload_problems(w, secrets, names("ConfigMap"),
                                 names("PersistentVolumeClaim"))
        out += affinity_problems(w, pods)
    services = by_kind.get("Service", [])
    for s in services:
        out += service_problems(s, workloads)
    for sm in by_kind.get("ServiceMonitor", []):
        sel = sm["spec"]["selector"].get("matchLabels") or {}
        hits = [s for s in services if subset(sel, s["metadata"].get("labels") or {})]
        ports = {p.get("name") for s in hits for p in s["spec"]["ports"]}
        if not hits:
            out.append(f"ServiceMonitor {sm['metadata']['name']}: selects no Service")
        for ep in sm["spec"].get("endpoints") or []:
            if ep.get("port") not in ports:
                out.append(f"ServiceMonitor: endpoint port {ep.get('port')} not on the Service")
    for cm in by_kind.get("ConfigMap", []):
        for key, text in (cm.get("data") or {}).items():
            if key.endswith(".json"):
                try:
                    json.loads(text)
                except ValueError as e:
                    out.append(f"ConfigMap {cm['metadata']['name']}: {key}: {e}")
    kinds = {w["kind"] for w in workloads}
    comps = {pod_of(w)["metadata"]["labels"].get("app.kubernetes.io/component")
             for w in workloads}
    for c in ("pms", "dispatcher", "worker"):
        if c not in comps:
            out.append(f"no {c} workload")
    if not kinds & {"DaemonSet", "StatefulSet"}:
        out.append("workers are neither a DaemonSet nor a StatefulSet")
    return out


def values_problems(values, srcvars, docvars, known_vars):
    """Every variable a binary reads, or its part's page documents, has a
    values key for its component."""
    out = []
    where = {"dispatcher": ["dispatcher"], "agent": ["worker"],
             "shim": ["pms"], "fuse": ["pms"],
             "common": ["dispatcher", "worker", "pms"]}
    from_secret = {"CLUSTERPLEX_TOKEN"}
    envs = {c: (values.get(c) or {}).get("env") or {}
            for c in ("dispatcher", "worker", "pms")}
    for part, comps in where.items():
        for var in sorted(srcvars.get(part, ())):
            if not CONFIG_VAR.match(var) or var in from_secret:
                continue
            missing = [c for c in comps if var not in envs[c]]
            # common/ is linked into every binary but a setting there is
            # read by some of them: one component's key is enough.
            if part == "common" and len(missing) < len(comps):
                continue
            for comp in missing:
                out.append(f"{part} reads {var}; values.yaml has no {comp}.env.{var}")
    for comp, names in sorted(docvars.items()):
        env = (values.get(comp) or {}).get("env") or {}
        for var in sorted(names):
            if CONFIG_VAR.match(var) and var not in from_secret and var not in env:
                out.append(f"docs document {var}; values.yaml has no {comp}.env.{var}")
    for comp in ("dispatcher", "pms", "worker"):
        for var in (values.get(comp) or {}).get("env") or {}:
            if var not in known_vars and var not in LSIO_VARS:
                out.append(f"values {comp}.env.{var} is documented nowhere")
    return out


# --- Grafana -------------------------------------------------------------------

PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left",
                "group_right", "bool", "offset", "and", "or", "unless"}


def promql_metrics(expr):
    """Metric names in a PromQL expression: what is left once label lists,
    matchers, ranges, strings and function calls are taken out."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", e)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        after = e[m.end():].lstrip()
        if after.startswith("(") or m.group(0) in PROMQL_WORDS:
            continue
        names.add(m.group(0))
    return names


def dashboard_problems(dash, documented_metrics):
    out = []
    for k in ("title", "uid", "panels", "schemaVersion"):
        if k not in dash:
            out.append(f"no {k}")
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)):
        out.append(f"duplicate panel ids {ids}")
    cells = {}
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    for p in dash.get("panels", []):
        g = p.get("gridPos") or {}
        if g.get("x", 0) + g.get("w", 0) > 24:
            out.append(f"panel {p.get('title')}: wider than the 24-column grid")
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    out.append(f"panel {p.get('title')} overlaps {cells[(x, y)]}")
                    break
                cells[(x, y)] = p.get("title")
            else:
                continue
            break
        for v in re.findall(r"\$\{?(\w+)", json.dumps(p)):
            if not v.startswith("__") and v not in variables:
                out.append(f"panel {p.get('title')}: unknown variable ${v}")
        for t in p.get("targets", []):
            expr = t.get("expr", "")
            metrics = promql_metrics(expr)
            if not metrics:
                out.append(f"panel {p.get('title')}: no metric in {expr!r}")
            for m in metrics:
                base = re.sub(r"_(bucket|sum|count)$", "", m)
                if not m.startswith("clusterplex_"):
                    out.append(f"panel {p.get('title')}: {m} lacks the clusterplex_ prefix")
                elif documented_metrics is not None and base not in documented_metrics \
                        and m not in documented_metrics:
                    out.append(f"panel {p.get('title')}: {m} is not in docs/dispatcher.md")
    return out


def documented_metrics(repo):
    f = os.path.join(repo, "docs", "dispatcher.md")
    if not os.path.exists(f):
        return None
    return set(re.findall(r"\b(clusterplex_[a-z0-9_]+)", open(f).read()))


# --- systemd -----------------------------------------------------------------

def units_problems(units_dir):
    out = []
    units = sorted(glob.glob(os.path.join(units_dir, "*.service")))
    if not units:
        return [f"no units in {units_dir}"]
    r = subprocess.run(["systemd-analyze", "verify", *units],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, SYSTEMD_LOG_LEVEL="notice"))
    for line in (r.stdout + r.stderr).splitlines():
        if line.strip():
            out.append(line.strip())
    if r.returncode != 0 and not out:
        out.append(f"systemd-analyze verify exited {r.returncode}")
    return out


# --- main --------------------------------------------------------------------

def load_all(path):
    with open(path) as f:
        return list(yaml.safe_load_all(f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--render", action="append", default=[],
                    help="NAME=FILE[:SECRET] a helm render to check")
    ap.add_argument("--units")
    ap.add_argument("--results", help="lines 'ok NAME' or 'not ok NAME: WHY' "
                    "of checks the caller ran, counted here too")
    a = ap.parse_args()
    repo = a.repo
    docker = os.path.join(repo, "docker")
    known = documented_vars(repo)
    if a.results:
        for line in open(a.results):
            line = line.rstrip("\n")
            if line.startswith("not ok "):
                name, _, why = line[7:].partition(": ")
                check(name, [why or "failed"])
            elif line.startswith("ok "):
                check(line[3:], [])

    for f in sorted(glob.glob(os.path.join(docker, "compose", "*.yml"))):
        doc = yaml.safe_load(open(f))
        rel = os.path.relpath(f, repo)
        check(f"compose {rel}", compose_problems(doc, False, known))
        if "plex" in doc.get("services", {}):
            check(f"compose {rel}: PMS can mount fuse", fuse_problems(doc))
    for f in sorted(glob.glob(os.path.join(docker, "swarm", "*.yml"))):
        doc = yaml.safe_load(open(f))
        rel = os.path.relpath(f, repo)
        check(f"stack {rel}", compose_problems(doc, True, known))
        check(f"stack {rel}: ClusterPlex's example layout", stack_problems(doc))

    manifests = os.path.join(docker, "kubernetes", "clusterplex.yaml")
    sample = yaml.safe_load(open(os.path.join(docker, "kubernetes", "values.yaml")))
    check("kubernetes docker/kubernetes/clusterplex.yaml",
          k8s_problems(load_all(manifests), sample["secret"]["existingSecret"]))
    for spec in a.render:
        name, _, rest = spec.partition("=")
        path, _, secret = rest.partition(":")
        check(f"helm render {name}", k8s_problems(load_all(path), secret or None))

    values = yaml.safe_load(open(os.path.join(docker, "helm", "clusterplex", "values.yaml")))
    check("helm values cover every variable the binaries read",
          values_problems(values, source_vars(repo), table_vars(repo), known))

    dash_path = os.path.join(docker, "helm", "clusterplex", "dashboards", "clusterplex.json")
    try:
        dash = json.load(open(dash_path))
        problems = dashboard_problems(dash, documented_metrics(repo))
    except ValueError as e:
        problems = [str(e)]
    check("grafana dashboard", problems)

    if a.units:
        check("systemd units (systemd-analyze verify)", units_problems(a.units))

    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
