#!/usr/bin/env bash
# Benchmark (run by hand): plan and dispatch one public notice to N subscribers (default
# 1,000,000) through the outbox transport — directory import, then intake and delivery — and
# report wall time and peak memory of each step. Figures go in the README.
#
#   benches/fanout.sh [N]
set -euo pipefail
N=${1:-1000000}
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
BIN=$CARGO_TARGET_DIR/release/disclose
work=$(mktemp -d)
export DISCLOSE_LEDGER_URL=$work/ledger.db DISCLOSE_PATHS_OUTPUT_DIR=$work/out
# A working morning (as bench_sms): SMS has quiet hours (21:00–08:00 Asia/Shanghai), and a run in
# them would plan the million and send nothing.
export DISCLOSE_CLOCK=${DISCLOSE_CLOCK:-2026-11-26T10:00:00+08:00}
# BENCH_PG=postgres://user@host/db: the same on a PostgreSQL ledger, in a schema of its own
# (dropped afterwards).
if [ -n "${BENCH_PG:-}" ]; then
  schema="bench_fanout_$$"
  export DISCLOSE_LEDGER_URL="$BENCH_PG?options=-c search_path=$schema"
  trap 'rm -rf "$work"; PGOPTIONS=--client-min-messages=warning psql -q "$BENCH_PG" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi

python3 - "$N" > "$work/subscribers.csv" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout
out.write("id,name,phone,wechat_openid,opted_out\n")
for i in range(n):
    # one in a hundred opted out, as a real list would have
    out.write(f"s{i:07d},订阅者{i},+86139{i:08d},oWx{i:09d},{'1' if i % 100 == 7 else ''}\n")
PY

python3 - "$work/job.json" <<'PY'
import json, sys
job = json.load(open("examples/jobs/src/01-pre-appointment-release.json"))
job["id"] = "bench-fanout"
job["channels"] = ["sms"]
job["audience"] = {"groups": ["subscribers"], "recipients": []}
json.dump(job, open(sys.argv[1], "w"), ensure_ascii=False)
PY
"$BIN" sign --key examples/keys/example-2026.key "$work/job.json" > "$work/signed.json"

measure() { # label, command…
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.log"
  read -r secs kb < "$work/time"
  printf '%-28s %8.2f s  %7.1f MB peak\n' "$label" "$secs" "$(awk "BEGIN { print $kb / 1024 }")"
}

echo "fan-out of one public notice to $N subscribers (SMS, outbox transport), $(nproc) cores"
measure "directory import" "$BIN" directory import --group subscribers --kind public "$work/subscribers.csv"
measure "dispatch (plan + deliver)" "$BIN" dispatch "$work/signed.json"
lines=$(wc -l < "$work/out/outbox/sms.jsonl")
echo "outbox lines written: $lines"
if [ "$lines" -eq 0 ]; then
  echo "nothing was written: the figures above are not a fan-out" >&2
  exit 1
fi
# The baseline in the same run: SQLite alone doing the writes the ledger's design needs per
# delivery (planned, claimed, finished), nothing else.
[ -n "${BENCH_PG:-}" ] || python3 benches/sqlite_floor.py "$N" "$work/floor.db"
grep -E "^bench-fanout" "$work/out.log" || true
