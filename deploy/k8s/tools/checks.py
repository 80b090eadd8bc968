"""Project checks of the built overlays that no schema expresses (run by deploy/k8s/validate).

Usage: python3 checks.py REPO BUILT_OVERLAY.yaml...

- KEDA: every ScaledObject targets a Deployment of the build; its maxReplicaCount, and the Deployment's
  replicas if set, are at most the partitions of each input topic of its triggers (topics.yaml): a consumer
  beyond the partition count gets no partition and only slows rebalances.
- Metrics: every `tradestream_*` name in the dashboard and the alert rules is one the code exports (string
  literals in the Rust sources) or one in PENDING; histogram series (_bucket, _sum, _count) count as their
  histogram's name.
- The PrometheusRule's groups equal the rules file's; the ConfigMap's copies of topics.yaml and
  instruments.yaml equal the repository's.
- Pods: non-root, read-only root filesystem, no privilege escalation, probes, resource requests, memory
  limits; secrets never in args or plain env values; KafkaTopics of production have 3 replicas and
  min.insync.replicas 2.
"""

import json
import pathlib
import re
import sys

import yaml

# Metrics being added to crates/runtime/src/metrics.rs by the scale-out work (issue 12), used by the
# dashboard and the alerts; once the code exports them this list is redundant.
PENDING = {
    "tradestream_restore_seconds",
    "tradestream_handoff_seconds",
    "tradestream_snapshot_bytes",
    "tradestream_rebalances_total",
    "tradestream_assigned_partitions",
    "tradestream_snapshot_timestamp_seconds",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
SECRET_WORDS = re.compile(r"password|secret|token|sasl\.|api[-_]?key", re.IGNORECASE)

problems = []


def problem(text):
    problems.append(text)


def load_all(path):
    return [doc for doc in yaml.safe_load_all(pathlib.Path(path).read_text()) if doc]


def exported_metrics(repo):
    names = set()
    for source in list((repo / "crates").rglob("*.rs")) + list((repo / "processors").rglob("*.rs")):
        names.update(re.findall(r'"(tradestream_[a-z0-9_]+)"', source.read_text(errors="replace")))
    return names | PENDING


def check_metric_names(where, text, known):
    for name in sorted(set(re.findall(r"\btradestream_[a-z0-9_]+", text))):
        base = name
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in known:
                base = name[: -len(suffix)]
        if base not in known:
            problem(f"{where}: metric {name} is not exported by the code")


def topic_partitions(repo):
    layout = yaml.safe_load((repo / "topics.yaml").read_text())
    return {topic["name"]: topic["partitions"] for topic in layout["topics"]}


def check_build(path, partitions, production):
    docs = load_all(path)
    name = pathlib.Path(path).stem
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    scaled = [d for d in docs if d["kind"] == "ScaledObject"]
    targeted = set()
    for obj in scaled:
        target = obj["spec"]["scaleTargetRef"]["name"]
        targeted.add(target)
        where = f"{name}: ScaledObject {obj['metadata']['name']}"
        if target not in deployments:
            problem(f"{where}: targets {target}, which is not a Deployment of the build")
            continue
        topics = [t["metadata"].get("topic") for t in obj["spec"]["triggers"] if t["type"] == "kafka"]
        if not topics or None in topics:
            problem(f"{where}: every kafka trigger must name its topic (the bound is that topic's partitions)")
            continue
        unknown = [t for t in topics if t not in partitions]
        if unknown:
            problem(f"{where}: topics {unknown} are not in topics.yaml")
            continue
        bound = min(partitions[t] for t in topics)
        most = obj["spec"].get("maxReplicaCount", 100)  # KEDA's default
        least = obj["spec"].get("minReplicaCount", 0)
        if most > bound:
            problem(f"{where}: maxReplicaCount {most} is above the {bound} partitions of {topics}")
        if least > most:
            problem(f"{where}: minReplicaCount {least} is above maxReplicaCount {most}")
        replicas = deployments[target]["spec"].get("replicas")
        if replicas is not None and replicas > bound:
            problem(f"{name}: Deployment {target}: replicas {replicas} is above the {bound} partitions of {topics}")
    for dep_name, dep in deployments.items():
        where = f"{name}: Deployment {dep_name}"
        if dep_name != "tradestream-gateway" and dep_name not in targeted:
            problem(f"{where}: no ScaledObject (workers scale on consumer lag, bounded by partitions)")
        pod = dep["spec"]["template"]["spec"]
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            problem(f"{where}: pod securityContext.runAsNonRoot is not true")
        if pod.get("automountServiceAccountToken") is not False:
            problem(f"{where}: the service account token is mounted (no pod talks to the Kubernetes API)")
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if dep_name == "tradestream-matcher" and grace < 60:
            problem(f"{where}: terminationGracePeriodSeconds {grace} leaves no time to snapshot every partition")
        for container in pod["containers"]:
            cwhere = f"{where} container {container['name']}"
            security = container.get("securityContext", {})
            if not security.get("readOnlyRootFilesystem"):
                problem(f"{cwhere}: root filesystem is writable")
            if security.get("allowPrivilegeEscalation") is not False:
                problem(f"{cwhere}: allowPrivilegeEscalation is not false")
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in container:
                    problem(f"{cwhere}: no {probe}")
            resources = container.get("resources", {})
            if not resources.get("requests", {}).get("cpu") or not resources.get("requests", {}).get("memory"):
                problem(f"{cwhere}: no cpu and memory requests")
            if not resources.get("limits", {}).get("memory"):
                problem(f"{cwhere}: no memory limit")
            for arg in container.get("args", []) + container.get("command", []):
                if SECRET_WORDS.search(arg):
                    problem(f"{cwhere}: argument {arg!r} looks like a secret (other users of the node can read args)")
            for env in container.get("env", []):
                if "value" in env and SECRET_WORDS.search(env["name"]) and not env["name"].endswith("_FILE"):
                    problem(f"{cwhere}: env {env['name']} has a plain value: take it from a Secret")
    topics = [d for d in docs if d["kind"] == "KafkaTopic"]
    if sorted(t["spec"].get("topicName", t["metadata"]["name"]) for t in topics) != sorted(partitions):
        problem(f"{name}: the KafkaTopics are not exactly the topics of topics.yaml")
    if production:
        for topic in topics:
            spec = topic["spec"]
            if spec.get("replicas") != 3 or str(spec.get("config", {}).get("min.insync.replicas")) != "2":
                problem(f"{name}: KafkaTopic {topic['metadata']['name']}: production needs replicas 3, min.insync.replicas 2")
    return docs


def main(argv):
    if len(argv) < 3:
        sys.exit("usage: checks.py REPO BUILT_OVERLAY.yaml...")
    repo = pathlib.Path(argv[1])
    k8s = repo / "deploy" / "k8s"
    partitions = topic_partitions(repo)
    known = exported_metrics(repo)

    for build in argv[2:]:
        check_build(build, partitions, production=pathlib.Path(build).stem == "production")

    dashboard_path = k8s / "base" / "monitoring" / "tradestream-dashboard.json"
    try:
        dashboard = json.loads(dashboard_path.read_text())
    except json.JSONDecodeError as error:
        problem(f"{dashboard_path}: not JSON: {error}")
        dashboard = {}
    exprs = [t.get("expr", "") for p in dashboard.get("panels", []) for t in p.get("targets", [])]
    if not exprs:
        problem(f"{dashboard_path}: no panel queries")
    check_metric_names("dashboard", "\n".join(exprs), known)
    for needed in ("tradestream_consumer_lag", "tradestream_dead_letters_total", "tradestream_latency_seconds",
                   "tradestream_rebalances_total", "tradestream_snapshot_timestamp_seconds",
                   "tradestream_assigned_partitions"):
        if needed not in "\n".join(exprs):
            problem(f"dashboard: no panel shows {needed}")

    rules_text = (k8s / "base" / "monitoring" / "alerts.rules.yaml").read_text()
    check_metric_names("alert rules", rules_text, known)
    rules = yaml.safe_load(rules_text)
    resource = yaml.safe_load((k8s / "base" / "monitoring" / "prometheusrule.yaml").read_text())
    if resource["spec"]["groups"] != rules["groups"]:
        problem("prometheusrule.yaml differs from alerts.rules.yaml: run python3 deploy/k8s/tools/prometheusrule.py")

    for name in ("topics.yaml", "instruments.yaml"):
        if (k8s / "base" / "config" / name).read_bytes() != (repo / name).read_bytes():
            problem(f"deploy/k8s/base/config/{name} differs from {name}: cp {name} deploy/k8s/base/config/")

    if problems:
        for text in problems:
            print(f"problem: {text}", file=sys.stderr)
        sys.exit(f"{len(problems)} problems")
    print(f"project checks: no problems ({len(known)} metric names known)")


if __name__ == "__main__":
    main(sys.argv)
