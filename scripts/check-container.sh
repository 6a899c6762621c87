#!/usr/bin/env bash
# Builds the cachecar container image from Dockerfile with podman (no Docker engine or registry
# needed: the debian:bookworm-slim base is debootstrapped once and imported locally) and checks it:
# the image's shape, a MISS then a HIT through the containerised proxy in front of a test origin,
# the admin listener of the image's default configuration (/healthz, /readyz, /metrics with the
# token), and a graceful stop: on `podman stop -t 5` cachecar reports not ready, closes its
# listener, finishes the response in flight, logs the drain and exits 0 within the timeout.
#
#   scripts/check-container.sh          needs root (re-runs itself with sudo); installs podman,
#                                       buildah, runc and debootstrap from Debian when missing
#
# The two containers share one network namespace with only a loopback (like a pod; no port is
# opened on the host), and the checks send their requests into it with nsenter and the host's
# curl. cachecar runs with the image's own configuration, plus --workers 2 to show that arguments
# reach it.
#
# Environment: XDG_CACHE_HOME (base image cache: $XDG_CACHE_HOME/cachecar-ci, default ~/.cache),
# CACHECAR_CI_DEBIAN_MIRROR, CACHECAR_CI_BASE_MAX_AGE_DAYS, CACHECAR_CI_STORAGE_MAX_GIB.
# Prints PASS/FAIL lines and a closing "N passed, N failed"; exits non-zero on any failure.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=container/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/container/lib.sh"
cc_require_root "$@"

image="$cc_image"
origin_image="$cc_origin_image"
proxy_ctr="cachecar-check-proxy-$$"
origin_ctr="cachecar-check-origin-$$"
work="$(mktemp -d)"
stopper=""
slow=""

cleanup() {
  for pid in $stopper $slow; do
    kill "$pid" 2>/dev/null || true
  done
  # One at a time, the proxy first: it uses the origin's network namespace, and podman 4.3
  # neither removes a container others depend on nor, after a name it cannot find, the rest.
  podman rm -f -t 0 "$proxy_ctr" >/dev/null 2>&1 || true
  podman rm -f -t 0 "$origin_ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

started=$SECONDS
cc_setup_podman
cc_ensure_base_image

cc_log "podman build: Dockerfile, tests/container/origin"
t0=$SECONDS
cc_build_images "$work"
cc_pass "images build: $image, $origin_image ($((SECONDS - t0)) s)"

# ---- the image's shape ----------------------------------------------------------------------
entrypoint="$(podman image inspect --format '{{json .Config.Entrypoint}}' "$image")"
cc_check "ENTRYPOINT is the exec form with the default config: $entrypoint" \
  test "$entrypoint" = '["/usr/local/bin/cachecar","--config","/etc/cachecar/cachecar.yaml"]'
user="$(podman image inspect --format '{{.Config.User}}' "$image")"
cc_check "runs as the numeric non-root user 10001 (USER $user)" test "$user" = "10001:10001"
ports="$(podman image inspect --format '{{json .Config.ExposedPorts}}' "$image")"
cc_check "exposes 8080 and 9901 ($ports)" cc_matches "$ports" '*"8080/tcp"*"9901/tcp"*'
podman run --rm --entrypoint ldd "$image" /usr/local/bin/cachecar >"$work/ldd" 2>&1 || true
libs_resolved() { ! grep -q "not found" "$work/ldd" && grep -q libevent "$work/ldd"; }
cc_check "every shared library of the binary is in the runtime image" libs_resolved
no_compiler() { ! podman run --rm --entrypoint sh "$image" -c 'command -v g++ || command -v cc'; }
cc_check "no compiler in the runtime image" no_compiler
# k8s/deployment.yaml's preStop hook runs it.
cc_check "/bin/sleep is in the runtime image (the manifests' preStop sleep)" \
  podman run --rm --network none --entrypoint /bin/sleep "$image" 0
podman run --rm --entrypoint /usr/local/bin/cachecar "$image" \
  --check-config /etc/cachecar/cachecar.yaml >"$work/check-config" 2>&1 || true
cc_check "the image's default config is valid and listens on 0.0.0.0:8080" \
  grep -q '^listen: 0.0.0.0:8080' "$work/check-config"
cc_check "and has the admin listener on 0.0.0.0:9901 with token_env CACHECAR_ADMIN_TOKEN" \
  grep -q '^admin: listen=0.0.0.0:9901 token_env=CACHECAR_ADMIN_TOKEN' "$work/check-config"

# ---- MISS then HIT through the container, in front of the test origin ------------------------
# The origin on 127.0.0.1:8000 of a network namespace of its own: the upstream of the image's
# configuration.
podman run -d --name "$origin_ctr" --network none "$origin_image" >/dev/null
netns_pid="$(podman inspect --format '{{.State.Pid}}' "$origin_ctr")"
in_netns() { nsenter --target "$netns_pid" --net -- "$@"; }
# wait_http URL SECONDS: until URL answers in the namespace (any HTTP status).
wait_http() {
  local deadline=$((SECONDS + $2))
  until in_netns curl -s -o /dev/null --max-time 2 "$1"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      return 1
    fi
    sleep 0.2
  done
}
if ! wait_http http://127.0.0.1:8000/ 20; then
  podman logs "$origin_ctr" 2>&1 | tail -20
  cc_die "the test origin did not answer on 127.0.0.1:8000"
fi

token="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
podman run -d --name "$proxy_ctr" --network "container:$origin_ctr" \
  -e "CACHECAR_ADMIN_TOKEN=$token" "$image" --workers 2 >/dev/null
# A path of its own, so that the request counts below see only the checks' requests.
if ! wait_http http://127.0.0.1:8080/wait-for-start 20; then
  podman logs "$proxy_ctr" 2>&1 | tail -20
  cc_die "cachecar in the container did not answer on 127.0.0.1:8080"
fi
cc_pass "cachecar starts in the container with the image's config (127.0.0.1:8080 -> :8000)"

fetch() { # fetch NAME URL [curl args...]: headers to $work/NAME.h, body to $work/NAME.b
  local name="$1" url="$2"
  shift 2
  in_netns curl -sS --max-time 5 -D "$work/$name.h" -o "$work/$name.b" "$@" "$url" || true
}
status() { # status NAME: the status code of a fetch (000 when there was no answer)
  head -1 "$work/$1.h" 2>/dev/null | awk '{ print $2 }' | grep . || echo 000
}
proxy=http://127.0.0.1:8080
fetch first "$proxy/index.html"
fetch second "$proxy/index.html"
cc_check "first GET /index.html is 200 ($(status first))" test "$(status first)" = 200
cc_check "first GET /index.html is X-Cache: MISS ($(cc_header "$work/first.h" x-cache))" \
  test "$(cc_header "$work/first.h" x-cache)" = MISS
cc_check "second GET /index.html is X-Cache: HIT ($(cc_header "$work/second.h" x-cache))" \
  test "$(cc_header "$work/second.h" x-cache)" = HIT
cc_check "the HIT has the same body" cmp -s "$work/first.b" "$work/second.b"

fetch private1 "$proxy/private/"
fetch private2 "$proxy/private/"
private2="$(cc_header "$work/private2.h" x-cache)"
cc_check "a no-store response is not served from the cache ($private2)" test "$private2" != HIT
podman logs "$origin_ctr" >"$work/origin.log" 2>&1
cc_check "the origin saw /index.html once and /private/ twice" \
  test "$(grep -c '^GET /index.html ' "$work/origin.log")-$(grep -c '^GET /private/ ' \
    "$work/origin.log")" = "1-2"

# ---- the admin listener of the image's configuration ----------------------------------------
admin=http://127.0.0.1:9901
fetch healthz "$admin/healthz"
cc_check "GET :9901/healthz is 200 ($(status healthz) $(head -c 40 "$work/healthz.b" 2>/dev/null))" \
  test "$(status healthz)" = 200
fetch readyz "$admin/readyz"
cc_check "GET :9901/readyz is 200 with the origin up ($(status readyz) $(
  head -c 60 "$work/readyz.b" 2>/dev/null))" test "$(status readyz)" = 200
fetch metrics-anon "$admin/metrics"
cc_check "GET :9901/metrics without the token is 401 ($(status metrics-anon))" \
  test "$(status metrics-anon)" = 401
fetch metrics "$admin/metrics" -H "Authorization: Bearer $token"
cc_check "GET :9901/metrics with CACHECAR_ADMIN_TOKEN is 200 ($(status metrics))" \
  test "$(status metrics)" = 200
cc_check "and Prometheus text with cachecar_ metrics" grep -q '^cachecar_[a-z_]*[{ ]' \
  "$work/metrics.b"

# ---- graceful stop, with a response in flight --------------------------------------------------
# /slow/ takes about 3 s (tests/container/origin/nginx.conf.in); cachecar gets SIGTERM once its
# first bytes have arrived.
in_netns curl -sS --max-time 10 -o "$work/slow.b" "$proxy/slow/body.txt" 2>"$work/slow.err" &
slow=$!
deadline=$((SECONDS + 5))
until [ -s "$work/slow.b" ] || [ "$SECONDS" -ge "$deadline" ]; do
  sleep 0.05
done
t0=$SECONDS
podman stop -t 5 "$proxy_ctr" >/dev/null 2>&1 &
stopper=$!
# While it drains: /readyz says so, and the proxy port takes no new connection.
readyz_draining=""
refused=""
while kill -0 "$stopper" 2>/dev/null; do
  if [ -z "$readyz_draining" ]; then
    code="$(in_netns curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$admin/readyz" ||
      true)"
    if [ "$code" = 503 ]; then
      readyz_draining="$code"
    fi
  elif [ -z "$refused" ]; then
    code="$(in_netns curl -s -o /dev/null --max-time 1 -w '%{http_code}' "$proxy/index.html" ||
      true)"
    if [ "$code" = 000 ]; then
      refused=yes
    fi
  fi
  sleep 0.05
done
wait "$stopper" || true
stopper=""
stop_seconds=$((SECONDS - t0))
slow_status=0
wait "$slow" || slow_status=$?
slow=""
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$proxy_ctr")"
podman logs "$proxy_ctr" >"$work/cachecar.log" 2>&1
cc_check "while draining, GET :9901/readyz is 503 (${readyz_draining:-never seen})" \
  test "$readyz_draining" = 503
cc_check "while draining, the proxy port refuses new connections (${refused:-never seen})" \
  test "$refused" = yes
cc_check "the response in flight completes ($(stat -c %s "$work/slow.b") of 49152 bytes, curl \
exit $slow_status)" test "$slow_status-$(stat -c %s "$work/slow.b")" = "0-49152"
cc_check "podman stop -t 5: cachecar exits 0 on SIGTERM (exit $exit_code; 137 = killed)" \
  test "$exit_code" = 0
cc_check "and before the stop timeout (${stop_seconds} s)" test "$stop_seconds" -lt 5
cc_check "the log says it drained ($(grep -m1 -o 'drained.*' "$work/cachecar.log"))" \
  grep -q 'drained' "$work/cachecar.log"
if [ "$cc_failures" -ne 0 ]; then
  echo "-- cachecar log:"
  tail -30 "$work/cachecar.log"
  cat "$work/slow.err"
fi

echo "check-container: done in $((SECONDS - started)) s"
echo "check-container: $cc_passed passed, $cc_failures failed"
[ "$cc_failures" -eq 0 ]
