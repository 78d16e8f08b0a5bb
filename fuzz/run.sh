#!/usr/bin/env bash
# Fuzz the job parser, the JCS round trip, the CSV import and template data on stable Rust, for humans (not run in CI).
#
#   fuzz/run.sh [SECONDS]     # each target runs SECONDS (default 60)
#
# New inputs go to fuzz/corpus-grown/<target>/ (git-ignored); the committed seeds in
# fuzz/corpus/<target>/ are only read. Crashes land in fuzz/artifacts/<target>/ (git-ignored);
# copy a reproducer to fuzz/crashes/ to keep it. To fold new coverage into the committed corpus:
#   cargo fuzz run -s none --fuzz-dir fuzz <target> fuzz/corpus/<target> fuzz/corpus-grown/<target> -- -merge=1
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
    echo "usage: $0 [SECONDS]" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz missing; installing it (a few minutes)" >&2
    cargo install cargo-fuzz --locked
fi

# Stable Rust is enough: without a sanitizer (-s none) cargo-fuzz passes no -Z flag.
# A separate target dir keeps the instrumented build away from the normal one.
target_dir="${CARGO_TARGET_DIR:-$root/fuzz/target}"

status=0
for target in job_parser jcs_roundtrip csv_import template_data; do
    mkdir -p "fuzz/corpus-grown/$target" "fuzz/corpus/$target"
    echo "== $target: ${secs}s" >&2
    if ! cargo fuzz run -s none --fuzz-dir "$root/fuzz" --target-dir "$target_dir" "$target" \
        "fuzz/corpus-grown/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$secs" -max_len=8192 -timeout=10 -rss_limit_mb=2048; then
        echo "== $target: FAILED (reproducer in fuzz/artifacts/$target/)" >&2
        status=1
    fi
done
exit "$status"
