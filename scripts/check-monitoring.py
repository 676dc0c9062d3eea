#!/usr/bin/env python3
"""The alerting rules and the Grafana dashboard shipped in packaging/ against a running agora:
every metric they name is one agora exports (in /metrics as scraped, given as a file), and
every dashboard query is valid PromQL (promtool checks it as a recording rule). The rules'
behaviour itself is tested by `promtool test rules` (packaging/prometheus/agora-rules.test.yml).

Usage: check-monitoring.py METRICS_TEXT_FILE
"""
import json
import os
import re
import subprocess
import sys
import tempfile

root = os.path.join(os.path.dirname(__file__), "..")
rules_file = os.path.join(root, "packaging/prometheus/agora-rules.yml")
dashboard_file = os.path.join(root, "packaging/grafana/agora-dashboard.json")
exported = set()
for line in open(sys.argv[1], encoding="utf-8"):
    if line.startswith("#") or not line.strip():
        continue
    exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
failures = []


def names(expr):
    return set(re.findall(r"\bagora_[a-z0-9_]+", expr))


rules_text = open(rules_file, encoding="utf-8").read()
exprs = [m.strip().strip("'\"") for m in re.findall(r"^\s*expr:\s*(.+)$", rules_text, re.M)]
dashboard = json.load(open(dashboard_file, encoding="utf-8"))
queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
queries += [v["query"]["query"] for v in dashboard["templating"]["list"] if v.get("type") == "query"]
for where, items in (("rule", exprs), ("dashboard", queries)):
    for e in items:
        for n in sorted(names(e) - exported):
            failures.append(f"{where} names {n}, which agora does not export: {e}")
print(f"{len(exprs)} rules and {len(queries)} dashboard queries name {len(set().union(*map(names, exprs + queries)))} metrics, all exported"
      if not failures else "\n".join(failures))

# Dashboard queries as PromQL: as recording rules, which promtool parses.
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, q in enumerate(queries):
        if q.startswith("label_values("):
            continue
        q = q.replace("$instance", ".*")
        f.write(f"      - record: dashboard:q{i}\n        expr: {json.dumps(q)}\n")
r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
os.unlink(f.name)
if r.returncode != 0:
    failures.append("dashboard queries are not valid PromQL: " + r.stdout + r.stderr)
else:
    print("dashboard queries: valid PromQL")
sys.exit(1 if failures else 0)
