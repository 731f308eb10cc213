#!/usr/bin/python3
"""The shipped monitoring (deploy/prometheus, deploy/grafana) against a live elexirion-server.

1. promtool: the deployed config and alert rules check, and the rules' unit tests pass.
2. elexirion-server runs on 127.0.0.1 (port 0, SQLite in a temp dir, the simulated model with
   a price, and an OpenAI-compatible instance at a closed port so retries, failures and a
   cooldown happen). Debian's prometheus scrapes it every second and loads the real alert
   rules. A small workload runs twice, with scrapes in between, so counters move while
   Prometheus watches: pipeline runs (one repeated, for a cache hit), runs on the broken
   provider, a NOT_FOUND, an optimization job, and a RecordExecutions batch.
3. Every dashboard query (Grafana variables substituted) returns at least one finite sample
   through /api/v1/query; the template variables' label queries return values; every metric
   the dashboard and the alerts name is exposed by the server; the live rules evaluate
   without error and the cooldown alert fires for the broken provider.

usage: observability_test.py SOURCE_DIR BINARY_DIR
"""
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SOURCE_DIR, BINARY_DIR = sys.argv[1], sys.argv[2]
SERVER = os.path.join(BINARY_DIR, "server", "app", "elexirion-server")
CLI = os.path.join(BINARY_DIR, "client", "elexirion")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "code_analysis")
PROM_DIR = os.path.join(SOURCE_DIR, "deploy", "prometheus")
DASHBOARD = os.path.join(SOURCE_DIR, "deploy", "grafana", "elexirion.json")
# Grafana variables -> what "All" means; $__rate_interval -> a window covering the whole run.
SUBSTITUTIONS = {"$__rate_interval": "5m", "$instance": ".*", "$provider": ".*"}

SERVER_CONFIG = """
providers:
  simulated:
    prices:
      simulated-1: {input: 3.0, output: 15.0}
  broken:
    kind: openai
    base_url: http://127.0.0.1:1/v1
    default_model: broken-1
    max_retries: 1
    retry_base_delay: 10ms
    retry_max_delay: 20ms
    cooldown_after_failures: 2
    cooldown: 1s
learning:
  tick: 1s
  pipelines:
    code_analysis:
      feedback_interval: 1m
      daily: {enabled: false}
      weekly: {enabled: false}
"""


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def run(args, expect_ok=True, timeout=120):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if expect_ok and p.returncode != 0:
        raise Failure("%s exited %d:\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    if not expect_ok and p.returncode == 0:
        raise Failure("%s succeeded but should fail:\n%s" % (" ".join(args), p.stdout))
    return p.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc, name):
    """SIGTERM, bounded wait, then SIGKILL. Returns the exit code."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        print("%s did not stop on SIGTERM; killing it" % name)
        proc.kill()
        return proc.wait(timeout=10)


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# --- static checks -------------------------------------------------------------------------

def promtool_checks():
    run(["promtool", "check", "config", os.path.join(PROM_DIR, "prometheus.yml")])
    run(["promtool", "check", "rules", os.path.join(PROM_DIR, "alerts.yml")])
    out = run(["promtool", "test", "rules", os.path.join(PROM_DIR, "tests", "alerts_test.yml")])
    check("SUCCESS" in out, "promtool test rules: " + out)
    # Every alert has a unit test that expects it to fire and one that expects silence.
    alerts = re.findall(r"^\s*- alert: (\w+)", open(os.path.join(PROM_DIR, "alerts.yml")).read(),
                        re.M)
    tests = open(os.path.join(PROM_DIR, "tests", "alerts_test.yml")).read()
    for alert in alerts:
        blocks = re.findall(r"alertname: %s\n\s*exp_alerts:(.*?)(?=\n\s*- eval_time|\n\s*- name|\Z)"
                            % alert, tests, re.S)
        check(any(b.strip() == "[]" for b in blocks), "no not-firing unit test for " + alert)
        check(any("exp_labels" in b for b in blocks), "no firing unit test for " + alert)
    return alerts


def dashboard_targets():
    dash = json.load(open(DASHBOARD))
    check(dash.get("schemaVersion", 0) >= 36, "dashboard schemaVersion")
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    check(variables.get("datasource", {}).get("type") == "datasource",
          "the datasource must be a variable")
    ids, targets = set(), []
    for panel in dash["panels"]:
        check(panel["id"] not in ids, "duplicate panel id %d" % panel["id"])
        ids.add(panel["id"])
        if panel["type"] == "row":
            continue
        check(panel["datasource"]["uid"] == "${datasource}",
              "panel %r does not use $datasource" % panel["title"])
        check(panel.get("targets"), "panel %r has no query" % panel["title"])
        for t in panel["targets"]:
            targets.append((panel["title"], t["expr"]))
    return targets, variables


def substitute(expr):
    for k, v in SUBSTITUTIONS.items():
        expr = expr.replace(k, v)
    check("$" not in expr, "unsubstituted variable in " + expr)
    return expr


def metric_names(expr):
    """Metric names a PromQL expression selects (identifiers followed by { or [)."""
    return set(re.findall(r"\b([a-z_][a-z0-9_]*)\s*[{\[]", expr)) - {"by", "without"}


# --- processes -----------------------------------------------------------------------------

class Server:
    def __init__(self, tmp):
        config = os.path.join(tmp, "server.yaml")
        with open(config, "w") as f:
            f.write(SERVER_CONFIG)
        self.log_path = os.path.join(tmp, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [SERVER, "--config", config, "--grpc.listen=127.0.0.1:0", "--http.listen=127.0.0.1:0",
             "--store.sqlite_path=" + os.path.join(tmp, "db.sqlite")],
            stdout=self.log, stderr=self.log)
        self.grpc_port = self.http_port = None
        deadline = time.time() + 30
        while time.time() < deadline and self.grpc_port is None:
            check(self.proc.poll() is None, "server exited: " + self.log_text())
            for line in open(self.log_path):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "serving":
                    self.grpc_port, self.http_port = entry["grpc_port"], entry["http_port"]
            time.sleep(0.05)
        check(self.grpc_port is not None, "server did not start: " + self.log_text())
        self.addr = "127.0.0.1:%d" % self.grpc_port

    def log_text(self):
        return open(self.log_path).read()[-4000:]


class Prometheus:
    def __init__(self, tmp, target):
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "rule_files: [%s]\n"
                    "scrape_configs:\n"
                    "  - job_name: elexirion\n"
                    "    static_configs: [{targets: ['%s']}]\n"
                    % (json.dumps(os.path.join(PROM_DIR, "alerts.yml")), target))
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.proc = None
        for _ in range(3):  # the port may be taken between choosing and binding it
            self.port = free_port()
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen(
                ["prometheus", "--config.file=" + config,
                 "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.retention.time=1h"],
                stdout=self.log, stderr=self.log)
            if self.wait_ready():
                return
            stop(self.proc, "prometheus")
        raise Failure("prometheus did not start: " + open(self.log_path).read()[-4000:])

    def wait_ready(self):
        deadline = time.time() + 30
        while time.time() < deadline and self.proc.poll() is None:
            try:
                http_get("http://127.0.0.1:%d/-/ready" % self.port, timeout=2)
                return True
            except OSError:
                time.sleep(0.2)
        return False

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.port, path, urllib.parse.urlencode(
            params, doseq=True))
        body = json.loads(http_get(url))
        check(body.get("status") == "success", "%s: %s" % (path, body))
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def finite_samples(self, expr):
        return [r for r in self.query(expr) if math.isfinite(float(r["value"][1]))]

    def wait_for(self, expr, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.finite_samples(expr):
                return
            time.sleep(0.5)
        raise Failure("timed out waiting for " + what)


# --- workload ------------------------------------------------------------------------------

def record_executions(addr, tmp, round_no):
    """A RecordExecutions batch through Debian's python3-grpcio (the runtime's side)."""
    import grpc
    from elexirion.v1 import telemetry_pb2, telemetry_pb2_grpc
    from google.protobuf import struct_pb2
    records = []
    for i in range(12):
        r = telemetry_pb2.ExecutionRecord(pipeline_name="code_analysis", success=i % 4 != 3,
                                          record_id="round%d-%d" % (round_no, i))
        r.duration.FromMilliseconds(200 + 50 * i)
        if i % 2 == 0:
            r.quality_score = 9.0  # harvested
        r.input.update({"code": "print(%d)  # round %d" % (i, round_no),
                        "analysis_type": "security"})
        r.output.update({"severity": "low", "findings": "debug print"})
        records.append(r)
    with grpc.insecure_channel(addr) as channel:
        stub = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        response = stub.RecordExecutions(
            telemetry_pb2.RecordExecutionsRequest(records=records), timeout=30)
    check(response.accepted == len(records) and response.harvested > 0,
          "RecordExecutions answered %r" % response)


def generate_stubs(out_dir):
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    v1 = os.path.join(proto_dir, "elexirion", "v1")
    protos = [os.path.join(v1, f) for f in sorted(os.listdir(v1)) if f.endswith(".proto")]
    os.makedirs(out_dir)
    run(["protoc", "-I", proto_dir, "--python_out", out_dir, "--grpc_out", out_dir,
         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"] + protos)
    sys.path.insert(0, out_dir)


def workload(server, tmp, round_no):
    cli = [CLI, "--addr", server.addr, "--timeout", "60s"]
    pipeline = os.path.join(EXAMPLE, "pipeline.yaml")
    run(cli + ["health"])
    if round_no == 1:
        run(cli + ["pipelines", "register", "code_analysis", "-f", pipeline])
    code = "cursor.execute('SELECT name FROM users WHERE id=' + uid%d)" % round_no
    for _ in range(2):  # the second run is a cache hit
        run(cli + ["run", "--name", "code_analysis", "--input", "code=" + code,
                   "--input", "analysis_type=security"])
    # Retries, failures and a cooldown (2 failed attempts) on the broken provider.
    run(cli + ["run", "--name", "code_analysis", "--provider", "broken", "--input",
               "code=x = %d" % round_no, "--input", "analysis_type=security"], expect_ok=False)
    run(cli + ["jobs", "get", "no-such-job-%d" % round_no], expect_ok=False)  # NOT_FOUND
    # A small random search (it reports trials), the same optimizer both rounds so the job
    # histogram's series exist before round two moves them.
    run(cli + ["optimize", "-f", pipeline, "--trainset", os.path.join(EXAMPLE, "examples"),
               "--metric", os.path.join(EXAMPLE, "metric.yaml"), "--program", "code_analysis",
               "--optimizer", "bootstrap_random_search", "--param", "num_candidate_programs=3",
               "--follow"], timeout=180)
    record_executions(server.addr, tmp, round_no)


# --- the test ------------------------------------------------------------------------------

def main():
    for tool in ("prometheus", "promtool", "protoc"):
        check(shutil.which(tool), tool + " is not installed (scripts/install-deps.sh)")
    started = time.time()
    alerts = promtool_checks()
    targets, variables = dashboard_targets()
    print("promtool: %d alert rules checked and unit-tested; dashboard: %d queries"
          % (len(alerts), len(targets)))

    tmp = tempfile.mkdtemp(prefix="elexirion-observability-")
    server = prom = None
    ok = False
    try:
        generate_stubs(os.path.join(tmp, "stubs"))
        server = Server(tmp)
        prom = Prometheus(tmp, "127.0.0.1:%d" % server.http_port)
        prom.wait_for('up{job="elexirion"} == 1', "the first scrape of elexirion")

        workload(server, tmp, 1)
        # Round two only after Prometheus has seen round one, so its counters move in view.
        prom.wait_for('elexirion_executions_recorded_total{job="elexirion"}', "round one scraped")
        time.sleep(2)
        workload(server, tmp, 2)
        expected = float(re.search(
            r'^elexirion_examples_harvested_total\{[^}]*\} (\S+)$',
            http_get("http://127.0.0.1:%d/metrics" % server.http_port), re.M).group(1))
        prom.wait_for('sum(elexirion_examples_harvested_total{job="elexirion"}) >= %g' % expected,
                      "round two scraped")

        # Every metric the dashboard and the alerts select is one the server exposes.
        exposed = set(re.findall(r"^# TYPE (\w+) (\w+)", http_get(
            "http://127.0.0.1:%d/metrics" % server.http_port), re.M))
        names = {n for n, _ in exposed}
        for n, kind in exposed:
            if kind == "histogram":
                names |= {n + "_bucket", n + "_sum", n + "_count"}
        live = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
        used = set()
        for _, expr in targets:
            used |= metric_names(expr)
        for r in live.values():
            used |= metric_names(r["query"])
        for v in variables.values():
            used |= metric_names(v.get("definition", ""))
        missing = sorted(used - names - {"up", "vector", "time"})
        check(not missing, "metrics named but not exposed by the server: %s" % missing)

        # Every panel query returns data (bounded retries: the last scrapes may still land).
        pending = [(title, substitute(expr)) for title, expr in targets]
        deadline = time.time() + 30
        while pending and time.time() < deadline:
            pending = [(t, e) for t, e in pending if not prom.finite_samples(e)]
            if pending:
                time.sleep(1)
        check(not pending, "dashboard queries without data:\n" + "\n".join(
            "  %s: %s" % (t, e) for t, e in pending))
        print("all %d dashboard queries returned data" % len(targets))

        # The template variables' label_values() queries.
        for name, v in variables.items():
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v.get("definition", ""))
            if not m:
                continue
            values = prom.api("label/%s/values" % m.group(2), **{"match[]": m.group(1)})
            check(values, "variable $%s has no values" % name)

        # The real rules run against live data: no evaluation errors, and the broken
        # provider's cooldown fires its alert.
        live = {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
        check(sorted(live) == sorted(alerts), "live rules %s" % sorted(live))
        for name, r in live.items():
            check(r["health"] == "ok", "rule %s: %s" % (name, r.get("lastError")))
        def firing():
            return [a["labels"] for a in prom.api("alerts")["alerts"] if a["state"] == "firing"]

        def cooling(labels):
            return (labels["alertname"] == "ElexirionLlmProviderCoolingDown" and
                    labels.get("provider") == "broken")
        deadline = time.time() + 15
        while not any(cooling(a) for a in firing()) and time.time() < deadline:
            time.sleep(0.5)
        check(any(cooling(a) for a in firing()), "cooldown alert not firing: %s" % firing())
        check(not [a for a in firing() if a["alertname"] == "ElexirionDown"], "server down fired")
        ok = True
    finally:
        prom_rc = stop(prom.proc if prom else None, "prometheus")
        server_rc = stop(server.proc if server else None, "elexirion-server")
        if not ok:
            if server:
                print("--- server log (tail)\n" + server.log_text())
            if prom:
                print("--- prometheus log (tail)\n" + open(prom.log_path).read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    check(server_rc == 0, "server exit code %s" % server_rc)
    check(prom_rc == 0, "prometheus exit code %s" % prom_rc)
    print("PASS in %.1f s" % (time.time() - started))


if __name__ == "__main__":
    # ctest's timeout sends SIGTERM: unwind so the finally block stops the processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    try:
        main()
    except Failure as e:
        print("FAIL: %s" % e)
        sys.exit(1)
