#!/usr/bin/env bash
# Builds the cachecar container image from Dockerfile with podman (no Docker engine or registry
# needed: the debian:bookworm-slim base is debootstrapped once and imported locally) and checks it:
# the image's shape, a MISS then a HIT through the containerised proxy in front of a test origin on
# loopback, and a graceful stop (exit code 0 on SIGTERM within the stop timeout).
#
#   scripts/check-container.sh          needs root (re-runs itself with sudo); installs podman,
#                                       buildah, runc and debootstrap from Debian when missing
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

cleanup() {
  podman rm -f -t 0 "$proxy_ctr" "$origin_ctr" >/dev/null 2>&1 || true
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
podman run --rm --entrypoint /usr/local/bin/cachecar "$image" \
  --check-config /etc/cachecar/cachecar.yaml >"$work/check-config" 2>&1 || true
cc_check "the image's default config is valid and listens on 0.0.0.0:8080" \
  grep -q '^listen: 0.0.0.0:8080' "$work/check-config"

# ---- MISS then HIT through the container, in front of the test origin on loopback -----------
origin_port="$(cc_free_port)"
podman run -d --name "$origin_ctr" --network host -e "ORIGIN_LISTEN=127.0.0.1:$origin_port" \
  "$origin_image" >/dev/null
if ! cc_wait_http "http://127.0.0.1:$origin_port/" 20; then
  podman logs "$origin_ctr" 2>&1 | tail -20
  cc_die "the test origin did not answer on 127.0.0.1:$origin_port"
fi

proxy_port="$(cc_free_port)"
while [ "$proxy_port" = "$origin_port" ]; do proxy_port="$(cc_free_port)"; done
# Host networking: the container's loopback is the host's, and ports stay on 127.0.0.1.
podman run -d --name "$proxy_ctr" --network host "$image" \
  --listen "127.0.0.1:$proxy_port" --upstream "http://127.0.0.1:$origin_port" --workers 2 \
  >/dev/null
# A path of its own, so that the request counts below see only the checks' requests.
if ! cc_wait_http "http://127.0.0.1:$proxy_port/wait-for-start" 20; then
  podman logs "$proxy_ctr" 2>&1 | tail -20
  cc_die "cachecar in the container did not answer on 127.0.0.1:$proxy_port"
fi
cc_pass "cachecar starts in the container (127.0.0.1:$proxy_port -> 127.0.0.1:$origin_port)"

fetch() { # fetch NAME PATH: headers to $work/NAME.h, body to $work/NAME.b
  curl -sS --max-time 5 -D "$work/$1.h" -o "$work/$1.b" "http://127.0.0.1:$proxy_port$2"
}
fetch first /index.html
fetch second /index.html
first_status="$(head -1 "$work/first.h" | tr -d '\r')"
cc_check "first GET /index.html is 200 ($first_status)" cc_matches "$first_status" 'HTTP/1.1 200*'
cc_check "first GET /index.html is X-Cache: MISS ($(cc_header "$work/first.h" x-cache))" \
  test "$(cc_header "$work/first.h" x-cache)" = MISS
cc_check "second GET /index.html is X-Cache: HIT ($(cc_header "$work/second.h" x-cache))" \
  test "$(cc_header "$work/second.h" x-cache)" = HIT
cc_check "the HIT has the same body" cmp -s "$work/first.b" "$work/second.b"

fetch private1 /private/
fetch private2 /private/
private2="$(cc_header "$work/private2.h" x-cache)"
cc_check "a no-store response is not served from the cache ($private2)" test "$private2" != HIT
podman logs "$origin_ctr" >"$work/origin.log" 2>&1
cc_check "the origin saw /index.html once and /private/ twice" \
  test "$(grep -c '^GET /index.html ' "$work/origin.log")-$(grep -c '^GET /private/ ' \
    "$work/origin.log")" = "1-2"

# ---- graceful stop ---------------------------------------------------------------------------
t0=$SECONDS
podman stop -t 5 "$proxy_ctr" >/dev/null
stop_seconds=$((SECONDS - t0))
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$proxy_ctr")"
cc_check "podman stop -t 5: cachecar exits 0 on SIGTERM (exit $exit_code; 137 = killed)" \
  test "$exit_code" = 0
cc_check "and before the stop timeout (${stop_seconds} s)" test "$stop_seconds" -lt 5
if [ "$cc_failures" -ne 0 ]; then
  echo "-- cachecar log:"
  podman logs "$proxy_ctr" 2>&1 | tail -30
fi

echo "check-container: done in $((SECONDS - started)) s"
echo "check-container: $cc_passed passed, $cc_failures failed"
[ "$cc_failures" -eq 0 ]
