#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests in k8s/:
#   1. yamllint (.yamllint) of k8s/ and of the cachecar YAML inside the ConfigMap;
#   2. every manifest against the Kubernetes API schema, unknown fields rejected, plus the rules
#      the schema cannot express (scripts/k8s-schema/k8s-schema-check.mjs), with a self-test:
#      deliberately broken copies (a misspelt field, a port given as a string, a container without
#      an image, a memory limit below the cache's bound, a grace period shorter than the preStop
#      sleep + drain_timeout, /readyz as a liveness or native-sidecar startup probe, no env for
#      admin.token_env) must be rejected;
#   3. the ConfigMap's cachecar YAML passes the real binary's `cachecar --check-config` (the host
#      build and the image's binary), and an invalid edit of it fails;
#   4. `podman kube play` of the ConfigMap + Deployment with the image built from the Dockerfile and
#      the test origin as the app: the pod starts, cachecar reaches the app over the pod's
#      loopback, a request through cachecar is a MISS then a HIT, the Deployment's httpGet probes
#      succeed (sent by this script: podman 4.3 cannot run them, see --play-copy), /metrics
#      takes the bearer token from the Secret, and cachecar drains and stops with exit 0.
#
#   scripts/check-manifests.sh [CACHECAR_BINARY]    default: build/src/cachecar (skipped if absent;
#                                                   the image's binary is always used)
#
# Needs root for podman (re-runs itself with sudo); installs yamllint, podman & co. from Debian
# and the npm packages of scripts/k8s-schema into $XDG_CACHE_HOME/cachecar-ci (not the repo).
# Prints PASS/FAIL lines and a closing "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=container/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/container/lib.sh"
cc_require_root "$@"

binary="${1:-$cc_root/build/src/cachecar}"
image="$cc_image"
origin_image="$cc_origin_image"
k8s="$cc_root/k8s"
work="$(mktemp -d)"
npm_dir="$cc_cache/k8s-schema"
play_file=""

cleanup() {
  if [ -n "$play_file" ]; then
    podman kube down "$play_file" >/dev/null 2>&1 || true
    xargs -r podman volume rm -f <"$work/configmaps" >/dev/null 2>&1 || true
    xargs -r podman secret rm <"$work/secrets" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

schema_check() { node "$npm_dir/k8s-schema-check.mjs" "$@"; }

started=$SECONDS
cc_install_missing yamllint
cc_setup_podman
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  cc_install_missing nodejs npm
fi

# ---- 1. yamllint ------------------------------------------------------------------------------
if yamllint --strict -f parsable -c "$cc_root/.yamllint" "$k8s" "$cc_root/.yamllint" \
  >"$work/yamllint.out" 2>&1; then
  cc_pass "yamllint k8s/"
else
  cat "$work/yamllint.out"
  cc_fail "yamllint k8s/"
fi

# ---- 2. schema and rules ----------------------------------------------------------------------
# npm ci only when the lock file changed since the last install.
mkdir -p "$npm_dir"
if ! cmp -s "$cc_root/scripts/k8s-schema/package-lock.json" "$npm_dir/package-lock.json" ||
  [ ! -d "$npm_dir/node_modules" ]; then
  cc_log "npm ci (scripts/k8s-schema) into $npm_dir"
  rm -rf "$npm_dir/node_modules"
  cp "$cc_root/scripts/k8s-schema/package.json" "$cc_root/scripts/k8s-schema/package-lock.json" \
    "$npm_dir/"
  (cd "$npm_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
    cc_die "npm ci in $npm_dir (scripts/k8s-schema/package-lock.json)"
fi
# Next to its node_modules, so that its imports resolve there.
cp "$cc_root/scripts/k8s-schema/k8s-schema-check.mjs" "$npm_dir/"

if schema_check "$k8s"/*.yaml >"$work/schema.out" 2>&1; then
  cc_pass "schema and rules: $(tail -1 "$work/schema.out" | sed 's/^k8s-schema-check: //')"
  grep '^WARN' "$work/schema.out" || true
else
  cat "$work/schema.out"
  cc_fail "schema and rules of k8s/*.yaml"
fi

# broken COPY_NAME EXPECTED_MESSAGE SED_SCRIPT [FILE]: a copy of FILE (default deployment.yaml)
# edited by SED_SCRIPT must be rejected with EXPECTED_MESSAGE.
broken() {
  local name="$1" expected="$2" script="$3" file="${4:-deployment.yaml}"
  local copy="$work/broken-$1.yaml"
  sed "$script" "$k8s/$file" >"$copy"
  if cmp -s "$copy" "$k8s/$file"; then
    cc_fail "self-test $name: the edit '$script' no longer applies to k8s/$file"
    return
  fi
  if schema_check "$copy" "$k8s/configmap.yaml" >"$work/broken-$name.out" 2>&1; then
    cc_fail "self-test $name: the broken copy was accepted"
  elif grep -qF -- "$expected" "$work/broken-$name.out"; then
    cc_pass "self-test $name: rejected ($(grep -m1 -F -- "$expected" "$work/broken-$name.out" |
      sed 's/^ERROR: [^ ]* //'))"
  else
    cat "$work/broken-$name.out"
    cc_fail "self-test $name: rejected, but without '$expected'"
  fi
}
broken wrong-field-name 'unknown field "containerport"' 's/containerPort: 8080/containerport: 8080/'
broken port-as-string 'containerPort: must be integer' \
  's/containerPort: 8080/containerPort: "8080"/'
broken missing-image 'container "cachecar" has no image' '/image: cachecar:/d'
broken memory-below-cache 'limits.memory: must be at least' 's/memory: 192Mi/memory: 100Mi/'
broken grace-below-drain 'leaves no time for cachecar' \
  's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 20/'
broken liveness-on-readyz 'livenessProbe must not use /readyz' \
  '0,\|path: /healthz|s||path: /readyz|'
broken startup-on-readyz 'startupProbe must not use /readyz' \
  '0,\|path: /healthz|s||path: /readyz|' deployment-native-sidecar.yaml
broken sidecar-grace 'leaves no time for the app' \
  's/terminationGracePeriodSeconds: 30/terminationGracePeriodSeconds: 25/' \
  deployment-native-sidecar.yaml
broken token-env-missing 'admin.token_env CACHECAR_ADMIN_TOKEN is not in' \
  's/- name: CACHECAR_ADMIN_TOKEN/- name: OTHER_TOKEN/'

# ---- 3. the ConfigMap's cachecar YAML with the real binary -----------------------------------
# In a directory of its own that the image's non-root user can read too.
conf_dir="$work/config"
mkdir -p "$conf_dir"
chmod 755 "$work" "$conf_dir"
if ! schema_check --extract-config "$k8s/configmap.yaml" "$conf_dir/cachecar.yaml" \
  >"$work/extract.out" 2>&1; then
  cat "$work/extract.out"
  cc_die "cannot extract cachecar.yaml from k8s/configmap.yaml"
fi
if yamllint -f parsable -c "$cc_root/.yamllint" "$conf_dir/cachecar.yaml" \
  >"$work/yamllint-cm.out" 2>&1; then
  cc_pass "yamllint of the ConfigMap's cachecar.yaml"
else
  sed "s|$conf_dir/cachecar.yaml|k8s/configmap.yaml[cachecar.yaml]|" "$work/yamllint-cm.out"
  cc_fail "yamllint of the ConfigMap's cachecar.yaml"
fi
# An invalid variant, to show that --check-config can fail (and fails for this reason).
sed 's/^workers: .*/workers: many/' "$conf_dir/cachecar.yaml" >"$conf_dir/invalid.yaml"
if cmp -s "$conf_dir/cachecar.yaml" "$conf_dir/invalid.yaml"; then
  cc_fail "self-test: the ConfigMap's cachecar.yaml has no top-level workers: line to break"
fi
chmod 644 "$conf_dir"/*.yaml

# check_config WHAT COMMAND...: COMMAND --check-config must accept cachecar.yaml and reject
# invalid.yaml naming `workers`; COMMAND gets the file name (relative to conf_dir) appended.
check_config() {
  local what="$1"
  shift
  if "$@" cachecar.yaml >"$work/check-config.out" 2>&1; then
    cc_pass "cachecar --check-config of the ConfigMap's YAML ($what)"
  else
    sed "s|$conf_dir/||" "$work/check-config.out"
    cc_fail "cachecar --check-config of the ConfigMap's YAML ($what)"
  fi
  if "$@" invalid.yaml >"$work/check-invalid.out" 2>&1; then
    cc_fail "cachecar --check-config accepted an invalid edit ($what)"
  elif grep -q 'workers' "$work/check-invalid.out"; then
    cc_pass "cachecar --check-config rejects an invalid edit ($what): $(
      head -1 "$work/check-invalid.out" | sed 's|.*/||')"
  else
    cat "$work/check-invalid.out"
    cc_fail "cachecar --check-config rejected the invalid edit for another reason ($what)"
  fi
}
host_check_config() { "$binary" --check-config "$conf_dir/$1"; }
if [ -x "$binary" ]; then
  check_config "$binary" host_check_config
else
  cc_log "no cachecar binary at $binary: checking with the image's binary only"
fi

# ---- 4. podman kube play ----------------------------------------------------------------------
cc_ensure_base_image
t0=$SECONDS
cc_build_images "$work"
cc_pass "images build: $image, $origin_image ($((SECONDS - t0)) s)"

image_check_config() {
  podman run --rm --network none -v "$conf_dir:/check:ro" --entrypoint /usr/local/bin/cachecar \
    "$image" --check-config "/check/$1"
}
check_config "the image's binary" image_check_config

# The pod as Kubernetes would run it, minus what podman 4.3 cannot do (k8s-schema-check.mjs
# --play-copy): the Deployment's images replaced by the local builds, no pulls, one replica, no
# containerPorts and no probes.
play_file="$work/play.yaml"
touch "$work/configmaps" "$work/secrets"
# It prints the ConfigMaps, which podman 4.3 turns into named volumes that `kube down` leaves
# behind (removed before and after, so no old content can be mounted), the Secrets the env
# refers to, and the probes it left out.
schema_check --play-copy "$play_file" \
  --image "cachecar=$image" --image "registry.example.com/shop=$origin_image" \
  "$k8s/configmap.yaml" "$k8s/deployment.yaml" >"$work/play-copy.out"
awk '$1 == "configmap" { print $2 }' "$work/play-copy.out" >"$work/configmaps"
awk '$1 == "probe"' "$work/play-copy.out" >"$work/probes"
pod="shop-pod-0"
podman pod rm -f "$pod" >/dev/null 2>&1 || true
xargs -r podman volume rm -f <"$work/configmaps" >/dev/null 2>&1 || true

# The admin token Secret (k8s/README.md), with a token made up for this run. podman 4.3 resolves
# a secretKeyRef from a podman secret holding the Secret's `data` as JSON (base64 values); a
# `kind: Secret` document in the played file does not work there (podman stores it as YAML and
# then fails to read it back).
token="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
while read -r _ name key; do
  podman secret rm "$name" >/dev/null 2>&1 || true
  printf '{"%s":"%s"}' "$key" "$(printf '%s' "$token" | base64 -w0)" |
    podman secret create "$name" - >/dev/null
  echo "$name" >>"$work/secrets"
done < <(awk '$1 == "secret"' "$work/play-copy.out" | sort -u)
cc_check "the Deployment takes the admin token from a Secret ($(paste -sd' ' "$work/secrets"))" \
  test -s "$work/secrets"

# --network none: the pod gets its own network namespace with only a loopback, which is all a
# sidecar needs, and no port is opened on the host.
if podman kube play --network none "$play_file" >"$work/play.out" 2>&1; then
  cc_pass "podman kube play: pod $pod created"
else
  cat "$work/play.out"
  cc_die "podman kube play"
fi

running() {
  [ "$(podman inspect --format '{{.State.Status}}' "$1" 2>/dev/null)" = running ]
}
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ] && ! { running "$pod-app" && running "$pod-cachecar"; }; do
  sleep 0.2
done
if running "$pod-app" && running "$pod-cachecar"; then
  cc_pass "both containers run (app, cachecar)"
else
  podman ps -a --format '{{.Names}} {{.Status}}'
  cc_fail "both containers run (app, cachecar)"
fi

# Requests to the pod's loopback, sent from the app container (the test origin has curl).
in_pod() { # in_pod NAME PATH: a request to cachecar's proxy port; headers to $work/NAME.h
  podman exec "$pod-app" curl -sS --max-time 5 -D "/tmp/$1.h" -o /dev/null \
    "http://127.0.0.1:8080$2" && podman exec "$pod-app" cat "/tmp/$1.h" >"$work/$1.h"
}
status_in_pod() { # status_in_pod URL [curl args...]: prints the HTTP status (000: no answer)
  local url="$1"
  shift
  podman exec "$pod-app" curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@" "$url" ||
    true
}
deadline=$((SECONDS + 20))
until in_pod warmup /wait-for-start >/dev/null 2>&1 || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.2
done
in_pod first /index.html || true
in_pod second /index.html || true
first="$(cc_header "$work/first.h" x-cache)"
second="$(cc_header "$work/second.h" x-cache)"
cc_check "first GET /index.html in the pod is X-Cache: MISS ($first)" test "$first" = MISS
cc_check "second GET /index.html in the pod is X-Cache: HIT ($second)" test "$second" = HIT
podman logs "$pod-app" >"$work/app.log" 2>&1
cc_check "the app saw /index.html once" test "$(grep -c '^GET /index.html ' "$work/app.log")" = 1

# The probes, as the kubelet would send them: GET on the container's port, success for a status
# from 200 to 399, retried until they pass (the kubelet retries every periodSeconds) or 20 s.
# From the pod's loopback instead of the pod's IP (the pod has no other address here), which
# the admin listener on 0.0.0.0 answers alike.
cc_check "the Deployment has httpGet probes for cachecar" grep -q ' http ' "$work/probes"
while read -r _ container probe handler port path; do
  if [ "$handler" != http ]; then
    cc_fail "$container $probe: a $handler probe, which this check cannot send"
    continue
  fi
  deadline=$((SECONDS + 20))
  code="$(status_in_pod "http://127.0.0.1:$port$path")"
  until [[ "$code" == [23]?? ]] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.5
    code="$(status_in_pod "http://127.0.0.1:$port$path")"
  done
  cc_check "$container $probe: GET :$port$path answers $code (sent from inside the pod)" \
    cc_matches "$code" '[23]??'
done <"$work/probes"

# /metrics with the Secret's token: refused without it (even from the pod's loopback, as a token
# is set), served with it.
metrics="http://127.0.0.1:9901/metrics"
code="$(status_in_pod "$metrics")"
cc_check "GET /metrics without the token: 401 ($code)" test "$code" = 401
code="$(status_in_pod "$metrics" -H "Authorization: Bearer $token")"
cc_check "GET /metrics with the Secret's token: 200 ($code)" test "$code" = 200
podman exec "$pod-app" curl -s --max-time 5 -H "Authorization: Bearer $token" "$metrics" \
  >"$work/metrics.txt" 2>&1 || true
cc_check "/metrics is Prometheus text with cachecar_ metrics" \
  grep -q '^cachecar_[a-z_]*[{ ]' "$work/metrics.txt"

podman exec "$pod-cachecar" cat /etc/cachecar/cachecar.yaml >"$work/mounted.yaml" 2>&1 || true
cc_check "cachecar runs with the ConfigMap's cachecar.yaml mounted at /etc/cachecar" \
  cmp -s "$work/mounted.yaml" "$conf_dir/cachecar.yaml"
sc_format='{{.Config.User}} ro={{.HostConfig.ReadonlyRootfs}} {{.HostConfig.SecurityOpt}}'
sc="$(podman inspect --format "$sc_format mem={{.HostConfig.Memory}}" "$pod-cachecar")"
cc_check "cachecar's securityContext and memory limit applied ($sc)" \
  cc_matches "$sc" '10001:10001 ro=true *no-new-privileges* mem=[1-9]*'
caps="$(podman exec "$pod-cachecar" grep -E '^Cap(Eff|Prm|Bnd):' /proc/1/status |
  tr -s '\t\n' '  ')"
cc_check "cachecar runs without any capability ($caps)" \
  cc_matches "$caps" 'CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 '

# podman 4.3 runs no preStop hook and ignores terminationGracePeriodSeconds: the stop timeout is
# the grace period less cachecar's preStop sleep (30 - 5 s in deployment.yaml).
podman pod stop -t 25 "$pod" >/dev/null 2>&1
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$pod-cachecar")"
cc_check "pod stop: cachecar exits 0 on SIGTERM (exit $exit_code)" test "$exit_code" = 0
podman logs "$pod-cachecar" >"$work/cachecar.log" 2>&1
cc_check "and drains first (log: $(grep -m1 -o 'drained.*' "$work/cachecar.log" || echo none))" \
  grep -q 'drained' "$work/cachecar.log"
if [ "$cc_failures" -ne 0 ]; then
  echo "-- cachecar log:"
  tail -30 "$work/cachecar.log"
fi

echo "check-manifests: done in $((SECONDS - started)) s"
echo "check-manifests: $cc_passed passed, $cc_failures failed"
[ "$cc_failures" -eq 0 ]
