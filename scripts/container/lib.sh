# shellcheck shell=bash
# Shared by scripts/check-container.sh and scripts/check-manifests.sh: podman set up for a machine
# without a container engine, systemd or registry access (rootful podman, runc, overlay or vfs
# storage), the debootstrapped base image and small helpers. Source it; it sets no shell options.

cc_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Survives between runs on the same machine and stays out of the repository.
cc_cache="${XDG_CACHE_HOME:-$HOME/.cache}/cachecar-ci"
cc_base_image="debian:bookworm-slim"
cc_base_tar="$cc_cache/debian-bookworm-minbase.tar"
# A base older than this is debootstrapped again, to pick up Debian's security updates.
cc_base_max_age_days="${CACHECAR_CI_BASE_MAX_AGE_DAYS:-30}"
cc_mirror="${CACHECAR_CI_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Past this size the image storage is emptied before a build.
cc_storage_max_gib="${CACHECAR_CI_STORAGE_MAX_GIB:-20}"
# The parent of graphroot in storage.conf.
cc_state="/var/lib/cachecar-ci"

export CONTAINERS_CONF="$cc_root/scripts/container/containers.conf"
export CONTAINERS_STORAGE_CONF="$cc_root/scripts/container/storage.conf"

cc_passed=0
cc_failures=0

cc_log() { printf '%s %s\n' "==" "$*"; }
cc_pass() {
  printf 'PASS: %s\n' "$*"
  cc_passed=$((cc_passed + 1))
}
cc_fail() {
  printf 'FAIL: %s\n' "$*"
  cc_failures=$((cc_failures + 1))
}
# cc_check DESCRIPTION COMMAND...: PASS when COMMAND succeeds, FAIL otherwise.
cc_check() {
  local what="$1"
  shift
  if "$@"; then cc_pass "$what"; else cc_fail "$what"; fi
}
cc_die() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# cc_require_root "$@": rootful podman and apt-get need root; re-runs the script with sudo if
# that is available.
cc_require_root() {
  if [ "$(id -u)" -eq 0 ]; then
    return
  fi
  if command -v sudo >/dev/null 2>&1; then
    exec sudo --preserve-env=XDG_CACHE_HOME,CI env HOME="$HOME" "$0" "$@"
  fi
  cc_die "run as root (rootful podman and apt-get)"
}

# cc_install_missing PKG...: installs the Debian packages that are not installed yet.
cc_install_missing() {
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return
  fi
  cc_log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null
}

# cc_setup_podman: installs podman & co. and selects the storage driver.
cc_setup_podman() {
  # containernetworking-plugins satisfies podman's network dependency; the checks themselves use
  # host networking (image builds, check-container) or a pod's own loopback (kube play).
  # catatonit: podman builds the pods' pause image from it (no registry to pull one from).
  cc_install_missing podman buildah runc conmon containernetworking-plugins catatonit \
    debootstrap uidmap curl iproute2
  cc_select_storage_driver
}

# Whether the kernel mounts overlayfs with upper and work directories on our storage's filesystem
# (not the case on some overlay-on-overlay setups, e.g. inside another container).
cc_overlay_usable() {
  local d
  mkdir -p "$cc_state"
  d="$(mktemp -d "$cc_state/overlay-probe.XXXXXX")"
  mkdir "$d/lower" "$d/upper" "$d/work" "$d/merged"
  if mount -t overlay overlay -o "lowerdir=$d/lower,upperdir=$d/upper,workdir=$d/work" \
    "$d/merged" 2>/dev/null; then
    umount "$d/merged"
    rm -rf "$d"
    return 0
  fi
  rm -rf "$d"
  return 1
}

# Exports STORAGE_DRIVER (overlay if usable, else vfs; CACHECAR_CI_STORAGE_DRIVER forces one).
# podman's database pins the driver of a storage: when it changes, the storage (a cache) is emptied.
cc_select_storage_driver() {
  local driver="${CACHECAR_CI_STORAGE_DRIVER:-}" marker="$cc_state/driver" previous=""
  if [ -z "$driver" ]; then
    if cc_overlay_usable; then driver=overlay; else driver=vfs; fi
  fi
  if [ -f "$marker" ]; then
    previous="$(cat "$marker")"
  fi
  if [ "$previous" != "$driver" ] && [ -d "$cc_state/storage" ]; then
    cc_log "storage driver ${previous:-unknown} -> $driver: emptying $cc_state/storage"
    STORAGE_DRIVER="$previous" podman system reset -f >/dev/null 2>&1 || true
    rm -rf "$cc_state/storage" /run/cachecar-ci
  fi
  mkdir -p "$cc_state"
  echo "$driver" >"$marker"
  export STORAGE_DRIVER="$driver"
  cc_log "podman storage driver: $driver"
}

# Prints "SIZE" in GiB (rounded down) of the image storage.
cc_storage_gib() {
  local root
  root="$(sed -n 's/^graphroot *= *"\(.*\)"/\1/p' "$CONTAINERS_STORAGE_CONF")"
  if [ ! -d "$root" ]; then
    echo 0
    return
  fi
  du -sx --block-size=1G "$root" 2>/dev/null | cut -f1
}

# Debootstraps Debian bookworm (minbase), trims it like the official slim image and stores it as
# a tar in the cache. Reused while younger than cc_base_max_age_days.
cc_make_base_tar() {
  if [ -f "$cc_base_tar" ] &&
    [ -z "$(find "$cc_base_tar" -mtime +"$cc_base_max_age_days" 2>/dev/null)" ]; then
    return
  fi
  mkdir -p "$cc_cache"
  local dir="$cc_cache/rootfs.tmp" t0=$SECONDS
  rm -rf "$dir"
  cc_log "debootstrap --variant=minbase bookworm (once; cached in $cc_base_tar)"
  debootstrap --variant=minbase bookworm "$dir" "$cc_mirror" >"$cc_cache/debootstrap.log" 2>&1 ||
    {
      tail -20 "$cc_cache/debootstrap.log" >&2
      cc_die "debootstrap failed (log: $cc_cache/debootstrap.log)"
    }

  # What the official debian:bookworm-slim image has on top of minbase: the updates and security
  # suites, no service starts during apt-get install (policy-rc.d), no docs, man pages or
  # translations installed, and no package caches or host files (hostname, resolv.conf).
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $cc_mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${cc_mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 755 "$dir/usr/sbin/policy-rc.d"
  cat >"$dir/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke {
  "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin";
};
APT::Update::Post-Invoke {
  "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin";
};
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  find "$dir/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  rm -rf "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
  rm -rf "$dir"/var/log/* "$dir"/tmp/* "$dir"/var/tmp/*
  : >"$dir/etc/hostname"
  rm -f "$dir/etc/resolv.conf"
  : >"$dir/etc/machine-id"

  tar --numeric-owner -C "$dir" -cf "$cc_base_tar.tmp" .
  mv "$cc_base_tar.tmp" "$cc_base_tar"
  rm -rf "$dir"
  cc_log "base image tar made in $((SECONDS - t0)) s"
  # A new base means new image IDs: drop the image built on the old one.
  podman rmi -f "$cc_base_image" >/dev/null 2>&1 || true
}

# Makes `FROM debian:bookworm-slim` resolve to the local debootstrapped base (podman looks up short
# names in local storage first; nothing is ever pulled: pull_policy never, --pull=never).
cc_ensure_base_image() {
  cc_make_base_tar
  local gib
  gib="$(cc_storage_gib)"
  if [ "${gib:-0}" -ge "$cc_storage_max_gib" ]; then
    cc_log "image storage is ${gib} GiB (limit ${cc_storage_max_gib}): removing every image"
    podman rm -a -f >/dev/null 2>&1 || true
    podman pod rm -a -f >/dev/null 2>&1 || true
    podman rmi -a -f >/dev/null 2>&1 || true
  fi
  if podman image exists "$cc_base_image" &&
    [ "$(podman image inspect --format '{{index .Labels "cachecar.base.tar"}}' "$cc_base_image" \
      2>/dev/null)" = "$(stat -c %Y "$cc_base_tar")" ]; then
    return
  fi
  cc_log "importing $cc_base_tar as $cc_base_image"
  podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL cachecar.base.tar=$(stat -c %Y "$cc_base_tar")" \
    "$cc_base_tar" "$cc_base_image" >/dev/null
}

cc_image="localhost/cachecar:ci"
cc_build_stage_image="localhost/cachecar-build:ci"
cc_origin_image="localhost/cachecar-test-origin:ci"

# cc_build TAG CONTEXT [podman build args...]: builds with layer caching, reaching Debian's
# archive through the host's network.
cc_build() {
  local tag="$1" context="$2"
  shift 2
  podman build --pull=never --network=host --layers -t "$tag" "$@" "$context"
}

# cc_build_images LOG_DIR: builds the cachecar image (Dockerfile) and the test origin image
# (tests/container/origin), then drops the layers that no tagged image uses any more. The build
# stage is tagged too, so that this keeps its cached layers (the build dependencies) and drops
# only those of older sources (with vfs every layer is a full copy: about 0.5 GB here).
#
# On a cold machine the compile dominates and leaves the network idle: the origin image (mostly
# apt-get downloads) builds meanwhile, and --jobs 2 runs the runtime stage's apt-get beside the
# build stage. Once cached, each build takes seconds.
cc_build_images() {
  local logs="$1" t0=$SECONDS origin_pid
  cc_build "$cc_origin_image" "$cc_root/tests/container/origin" >"$logs/build-origin.log" 2>&1 &
  origin_pid=$!
  if ! cc_build "$cc_image" "$cc_root" --jobs 2 >"$logs/build-cachecar.log" 2>&1; then
    wait "$origin_pid" || true
    tail -40 "$logs/build-cachecar.log"
    cc_die "podman build of $cc_image (log above)"
  fi
  cc_log "built $cc_image in $((SECONDS - t0)) s"
  if ! wait "$origin_pid"; then
    tail -40 "$logs/build-origin.log"
    cc_die "podman build of $cc_origin_image (log above)"
  fi
  # Every layer is cached by now: this only tags the build stage.
  if ! cc_build "$cc_build_stage_image" "$cc_root" --target build >"$logs/build-stage.log" 2>&1
  then
    tail -40 "$logs/build-stage.log"
    cc_die "podman build of $cc_build_stage_image (log above)"
  fi
  podman image prune -f >/dev/null
}

# Prints a TCP port on 127.0.0.1 that nothing listens on (races are unlikely: random start).
cc_free_port() {
  local port tries=0
  while [ "$tries" -lt 200 ]; do
    port=$((20000 + RANDOM % 40000))
    tries=$((tries + 1))
    if ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return
    fi
  done
  cc_die "no free port found"
}

# cc_wait_http URL SECONDS: waits until URL answers (any HTTP status).
cc_wait_http() {
  local url="$1" deadline=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if curl -s -o /dev/null --max-time 2 "$url"; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# cc_matches VALUE PATTERN: VALUE matches the glob PATTERN.
cc_matches() {
  # shellcheck disable=SC2053 # a glob on purpose
  [[ "$1" == $2 ]]
}

# cc_header HEADERS_FILE NAME: prints the value of one response header (case-insensitive name).
cc_header() {
  tr -d '\r' <"$1" | awk -v name="$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" \
    -F': *' 'tolower($1) == name { print $2; exit }'
}
