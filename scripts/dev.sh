#!/usr/bin/env bash
# One entry point for setting up, building, running and testing cachecar on Debian bookworm.
#
#   scripts/dev.sh run [cachecar args...]   install what is missing, build, run with conf/cachecar.yaml
#   scripts/dev.sh test                     install what is missing (with redis-server), build with
#                                           warnings as errors and run every test under
#                                           AddressSanitizer + UndefinedBehaviorSanitizer, then
#                                           again plain, with the platform checks (container
#                                           image, Kubernetes manifests: CTest label `platform`;
#                                           CACHECAR_PLATFORM_CHECKS=OFF leaves them out)
#   scripts/dev.sh build                    install and build only
#   scripts/dev.sh deps [--with-tests]      install the Debian packages only
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jobs="$(nproc 2>/dev/null || echo 2)"

build_packages=(g++ make cmake pkg-config libevent-dev libhiredis-dev libyaml-cpp-dev
                libxxhash-dev node-llhttp libgtest-dev libgmock-dev)
test_packages=(redis-server)

# Installs the packages that are not installed yet (apt-get runs only when something is missing).
install_missing() {
  local missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  echo "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# build DIR [cmake args...]
build() {
  local dir="$1"
  shift
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

cmd="${1:-run}"
shift || true
case "$cmd" in
  deps)
    install_missing "${build_packages[@]}"
    if [ "${1:-}" = "--with-tests" ]; then
      install_missing "${test_packages[@]}"
    fi
    ;;
  build)
    install_missing "${build_packages[@]}"
    build "$root/build"
    ;;
  run)
    install_missing "${build_packages[@]}"
    build "$root/build" -DCACHECAR_TESTS=OFF
    exec "$root/build/src/cachecar" --config "$root/conf/cachecar.yaml" "$@"
    ;;
  test)
    install_missing "${build_packages[@]}" "${test_packages[@]}"
    status=0
    echo "== build and test under AddressSanitizer + UndefinedBehaviorSanitizer =="
    build "$root/build-asan" -DCACHECAR_WERROR=ON -DCACHECAR_SANITIZE=ON \
      -DCACHECAR_PLATFORM_CHECKS=OFF
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir "$root/build-asan" --output-on-failure -j "$jobs" || status=1
    echo "== build (warnings are errors) and test, with the container and manifest checks =="
    # Once is enough for the platform checks: they test the image and the manifests, which the
    # sanitizer build does not change.
    build "$root/build" -DCACHECAR_WERROR=ON \
      -DCACHECAR_PLATFORM_CHECKS="${CACHECAR_PLATFORM_CHECKS:-ON}"
    ctest --test-dir "$root/build" --output-on-failure -j "$jobs" || status=1
    exit "$status"
    ;;
  *)
    echo "usage: scripts/dev.sh run|test|build|deps" >&2
    exit 2
    ;;
esac
