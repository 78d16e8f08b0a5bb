#!/usr/bin/env bash
# The steps of deploy/Dockerfile, checked without Docker (Docker does not run on the CI machine):
#
#   1. every COPY source (outside the build stage) exists in the build context, the repository
#      root, and .dockerignore does not leave it out;
#   2. every package the runtime stage installs exists in the Debian release the image is built
#      on (apt-cache show), and the fonts the letter channel opens by default
#      (src/letter/mod.rs) are the files fonts-noto-cjk installs, when that package is installed;
#   3. the build's `cargo build --release --locked --bin NAME` can resolve: Cargo.lock is in step
#      with Cargo.toml (cargo metadata --locked, no download), NAME is a binary of the package,
#      ENTRYPOINT runs it, and the placeholder step covers every target it builds (only
#      src/main.rs and src/lib.rs, no build script);
#   4. EXPOSE is the port of deploy/disclose.toml's http_addr, the HEALTHCHECK's path is a route
#      of the API, and the paths of deploy/disclose.toml are where the image puts things.
#
# What it does not do: build the image, run the release build (too slow for CI), or start a
# container. Exit 1 with every failed check listed. Run from anywhere: bash deploy/check-image-steps.sh
set -uo pipefail
cd "$(dirname "$0")/.."

dockerfile=deploy/Dockerfile
failures=0
ok() { echo "ok    $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
note() { echo "note  $*"; }

[ -f "$dockerfile" ] || { echo "FAIL  $dockerfile missing"; exit 1; }

# The Dockerfile with continuation lines joined, comments dropped.
joined=$(sed -e '/^[[:space:]]*#/d' "$dockerfile" | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta')

# --- 1. COPY sources -----------------------------------------------------------------------
ignored=()
if [ -f .dockerignore ]; then
  while IFS= read -r line; do
    line=${line%%#*}; line=${line%/}; line=${line## }; line=${line%% }
    [ -n "$line" ] && ignored+=("$line")
  done < .dockerignore
fi
while read -r -a words; do
  [ ${#words[@]} -gt 0 ] && [ "${words[0]^^}" = COPY ] || continue
  args=()
  from_stage=
  for w in "${words[@]:1}"; do
    case $w in
      --from=*) from_stage=${w#--from=} ;;
      --*) ;;
      *) args+=("$w") ;;
    esac
  done
  [ -n "$from_stage" ] && continue # from a build stage, not the context
  n=${#args[@]}
  for src in "${args[@]:0:n-1}"; do
    if [ ! -e "$src" ]; then
      fail "COPY $src: not in the repository"
      continue
    fi
    for pat in "${ignored[@]}"; do
      if [ "${src%/}" = "$pat" ] || [[ "${src%/}" == "$pat"/* ]]; then
        fail "COPY $src: left out of the build context by .dockerignore ($pat)"
      fi
    done
    ok "COPY $src exists"
  done
done <<< "$joined"

# --- 2. runtime packages and fonts ----------------------------------------------------------
# The runtime stage is the text after the last FROM.
runtime=$(awk 'toupper($1)=="FROM"{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' <<< "$joined")
base=$(grep -im1 '^FROM ' <<< "$runtime" | awk '{print $2}')
codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
case $base in
  *"$codename"*) ok "runtime base $base is this machine's release ($codename): apt answers for it" ;;
  *) note "runtime base $base is not this machine's release ($codename): package checks may differ" ;;
esac
packages=$(grep -o 'apt-get install[^&;]*' <<< "$runtime" | sed 's/apt-get install//' \
  | tr ' ' '\n' | grep -v '^-' | grep -v '^$' | sort -u)
[ -n "$packages" ] || fail "no apt-get install found in the runtime stage"
for p in $packages; do
  if apt-cache show "$p" >/dev/null 2>&1; then
    ok "package $p exists in apt"
  else
    fail "package $p: apt-cache show finds nothing (apt-get update first?)"
  fi
done
grep -qw fonts-noto-cjk <<< "$packages" || fail "fonts-noto-cjk is not installed: letters need it"
fonts=$(grep -o '"/usr/share/fonts/[^"]*"' src/letter/mod.rs | tr -d '"' | sort -u)
[ -n "$fonts" ] || fail "no default font path found in src/letter/mod.rs"
if dpkg -s fonts-noto-cjk >/dev/null 2>&1; then
  listed=$(dpkg -L fonts-noto-cjk)
  for f in $fonts; do
    if grep -qxF "$f" <<< "$listed"; then ok "font $f comes with fonts-noto-cjk"; else fail "font $f is not in fonts-noto-cjk"; fi
  done
else
  note "fonts-noto-cjk is not installed here: the letter fonts ($(echo $fonts)) not matched to its file list"
fi

# --- 3. the cargo build ---------------------------------------------------------------------
bin=$(grep -o 'cargo build [^&]*--bin [A-Za-z0-9_-]*' <<< "$joined" | head -n1 | awk '{print $NF}')
grep -q 'cargo build --release --locked' <<< "$joined" || fail "the build is not 'cargo build --release --locked'"
if meta=$(cargo metadata --locked --offline --format-version 1 --no-deps 2>&1); then
  ok "cargo metadata --locked: Cargo.lock is in step with Cargo.toml"
  python3 - "$bin" "$meta" <<'PY' || failures=$((failures + 1))
import json, os, sys
bin_name, meta = sys.argv[1], json.loads(sys.argv[2])
targets = [t for p in meta["packages"] for t in p["targets"]]
root = os.getcwd()
bins = [t for t in targets if "bin" in t["kind"]]
bad = []
if not any(t["name"] == bin_name for t in bins):
    bad.append(f"--bin {bin_name}: the package has binaries {[t['name'] for t in bins]}")
for t in targets:
    rel = os.path.relpath(t["src_path"], root)
    if "custom-build" in t["kind"]:
        bad.append(f"a build script ({rel}): the placeholder step must copy it")
    elif ("bin" in t["kind"] or "lib" in t["kind"]) and rel not in ("src/main.rs", "src/lib.rs"):
        bad.append(f"target {t['name']} at {rel}: the placeholder step only makes src/main.rs and src/lib.rs")
for b in bad:
    print("FAIL  " + b)
if bad:
    sys.exit(1)
print(f"ok    --bin {bin_name} is the package's binary; the placeholder step covers lib and bin")
PY
else
  fail "cargo metadata --locked: $meta"
fi
if grep -qE "^ENTRYPOINT \[\"$bin\"\]" <<< "$joined" && grep -q "/usr/local/bin/$bin" <<< "$joined"; then
  ok "ENTRYPOINT runs $bin, installed as /usr/local/bin/$bin"
else
  fail "ENTRYPOINT does not run /usr/local/bin/$bin"
fi

# --- 4. port, health check, paths -----------------------------------------------------------
expose=$(grep -im1 '^EXPOSE ' <<< "$joined" | awk '{print $2}')
http_addr=$(sed -n 's/^http_addr = "\(.*\)"/\1/p' deploy/disclose.toml)
if [ -n "$expose" ] && [ "${http_addr##*:}" = "$expose" ]; then
  ok "EXPOSE $expose is the port of http_addr $http_addr"
else
  fail "EXPOSE ${expose:-(none)} does not match http_addr ${http_addr:-(none)} of deploy/disclose.toml"
fi
health=$(grep -im1 '^HEALTHCHECK' <<< "$joined" | grep -o 'GET /[A-Za-z0-9/_-]*' | awk '{print $2}')
if [ -n "$health" ] && grep -qF ".route(\"$health\"" src/api/mod.rs; then
  ok "HEALTHCHECK asks $health, a route of src/api/mod.rs"
else
  fail "HEALTHCHECK path ${health:-(none)} is not a route of src/api/mod.rs"
fi
if grep -qF "127.0.0.1/$expose" <<< "$joined"; then ok "HEALTHCHECK asks port $expose"; else fail "HEALTHCHECK does not ask port $expose"; fi
for pair in "channels_dir:channels" "templates_dir:templates"; do
  key=${pair%%:*}; src=${pair#*:}
  dest=$(sed -n "s/^$key = \"\(.*\)\"/\1/p" deploy/disclose.toml)
  if grep -qE "^COPY $src/? $dest/?\$" <<< "$joined"; then
    ok "$key $dest is where the image puts $src/"
  else
    fail "$key ${dest:-(none)}: the image does not COPY $src there"
  fi
done
if grep -qE '^COPY deploy/disclose.toml /etc/disclose/disclose.toml$' <<< "$joined" && grep -qE '^WORKDIR /etc/disclose$' <<< "$joined"; then
  ok "deploy/disclose.toml is ./disclose.toml of the WORKDIR: read without --config"
else
  fail "the image does not put deploy/disclose.toml in its WORKDIR"
fi
grep -qE '^USER [1-9][0-9]*' <<< "$runtime" && ok "runs as a non-root numeric user" || fail "no non-root USER in the runtime stage"

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
