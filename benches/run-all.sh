#!/usr/bin/env bash
# The benchmark book (BENCHMARKS.md), run by hand: every benchmark of the project, each beside
# its baseline measured in the same run, at each audience size, on a release build. Prints the
# machine and every figure; `tee` it to keep the record.
#
#   benches/run-all.sh                      # sizes 1000 10000 100000 1000000
#   SIZES="1000 10000" benches/run-all.sh   # a quicker pass
#   BENCH_PG=postgres://postgres@127.0.0.1:5432/test benches/run-all.sh   # also the fan-out on PostgreSQL
#
# Needs: RabbitMQ on 127.0.0.1:5672 (intake), Debian's fonts-noto-cjk (letters), python3, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 10000 100000 1000000"}
INTAKE_JOBS=${INTAKE_JOBS:-50000}
LETTERS=${LETTERS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --bin disclose --example bench_sms --example bench_intake --example bench_letters
R=$CARGO_TARGET_DIR/release

echo "== machine"
date -u +"%Y-%m-%dT%H:%M:%SZ"
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
free -g | awk '/^Mem:/ { print $2 " GiB memory" }'
uname -sr
rustc -V
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== fan-out through the outbox (dry-run) transport; baseline: SQLite alone"
for n in $SIZES; do
  echo "-- $n subscribers"
  BENCH_PG= benches/fanout.sh "$n"
done

if [ -n "${BENCH_PG:-}" ]; then
  echo
  echo "== the same fan-out on the PostgreSQL ledger ($BENCH_PG)"
  for n in $SIZES; do
    echo "-- $n subscribers"
    benches/fanout.sh "$n"
  done
fi

echo
echo "== SMS through the Tencent emulator; baseline: a bare reqwest client"
for n in $SIZES; do
  echo "-- $n subscribers"
  "$R/examples/bench_sms" "$n"
done

echo
echo "== intake from RabbitMQ; baseline: a bare lapin consumer"
"$R/examples/bench_intake" "$INTAKE_JOBS"

echo
echo "== official letters (GB/T 9704); baseline: layout alone, without the channel's files"
"$R/examples/bench_letters" "$LETTERS"
"$R/examples/bench_letters" "$LETTERS" 1
"$R/examples/bench_letters" "$LETTERS" channel

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
