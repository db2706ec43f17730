#!/usr/bin/env bash
# The "Query doctor on the demo data" table of BENCHMARKS.md. For each
# statement of sql/bench/doctor_statements.sql: `tally explain --json` (its
# execution time, the best index hypopg verified and the estimated cost cut),
# then the suggested SQL applied as printed, then `tally explain --json`
# again. Times are the best of three runs (EXPLAIN ANALYZE's execution time).
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/doctor_demo target/release/tally demo --once --events 1000000
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/doctor_demo scripts/doctor-bench.sh
#
# It creates indexes in that database: use one made for it.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?set DATABASE_URL to a database tally demo filled}"
TALLY=${TALLY:-target/release/tally} python3 - <<'PY'
import json, os, subprocess

tally = os.environ["TALLY"]
statements = [s.strip() for s in open("sql/bench/doctor_statements.sql").read().split(";\n")]
statements = [" ".join(l for l in s.splitlines() if not l.startswith("--")).strip() for s in statements]
statements = [s for s in statements if s]

def explain(sql):
    runs = [json.loads(subprocess.run([tally, "explain", "--json", sql], check=True, capture_output=True, text=True).stdout)
            for _ in range(3)]
    return min(r["execution_time_ms"] for r in runs), runs[-1]

print("| statement | before | suggestion (verified with hypopg) | estimated cost | after | speed-up |")
print("|---|---:|---|---:|---:|---:|")
for sql in statements:
    before, report = explain(sql)
    verified = [s for s in report["suggestions"] if s["verified"]]
    if not verified:
        print(f"| `{sql}` | {before:.1f} ms | none cut the estimated cost by half | | | |")
        continue
    best = verified[0]
    for statement in best["sql"]:
        subprocess.run(["psql", os.environ["DATABASE_URL"], "-qc", statement], check=True)
    subprocess.run(["psql", os.environ["DATABASE_URL"], "-qc", "ANALYZE"], check=True)
    after, _ = explain(sql)
    cut = 1 - best["cost_after"] / best["cost_before"]
    print(f"| `{sql}` | {before:.1f} ms | `{best['index']}` | {best['cost_before']:.0f} → {best['cost_after']:.0f} (−{cut:.0%}) "
          f"| {after:.2f} ms | {before / max(after, 0.001):.0f}× |")
PY
