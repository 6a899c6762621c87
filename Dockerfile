# cachecar container image.
#
#   podman build -t cachecar:0.1.0 .        (or: docker build -t cachecar:0.1.0 .)
#   podman run --rm -p 8080:8080 cachecar:0.1.0 --upstream http://app.example:8000
#
# The image's default configuration is conf/cachecar.yaml with `listen` moved to 0.0.0.0:8080
# (the example listens on loopback, which nothing outside the container could reach), the admin
# listener on 0.0.0.0:9901 and drain_timeout: 8s (see the config stage below). In Kubernetes a
# ConfigMap is mounted over /etc/cachecar instead: see k8s/. Arguments after the image name are
# appended to the ENTRYPOINT, so --upstream/--listen/--workers override the file.

# ---- build stage: the same CMake build as scripts/dev.sh, without the tests -------------------
FROM debian:bookworm-slim AS build

# The -dev packages of scripts/dev.sh, minus GoogleTest (the tests are not built here).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ make cmake pkg-config libevent-dev libhiredis-dev libyaml-cpp-dev libxxhash-dev \
      node-llhttp \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore keeps tests/, build directories and the git history out of the context, so a
# change to a test does not invalidate this layer.
COPY . .

# Two jobs by default: the CI machines have two cores shared with other work.
ARG JOBS=2
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCACHECAR_TESTS=OFF \
 && cmake --build /build -j "${JOBS}" \
 && strip /build/src/cachecar \
 && /build/src/cachecar --version

# The container's default configuration: the example, listening on every interface, plus
# - the admin listener on every interface too, for probes from outside the container (/healthz
#   and /readyz need no token; /metrics and /purge answer only loopback peers until
#   CACHECAR_ADMIN_TOKEN is set, then only requests with that bearer token);
# - a drain shorter than the 10 s that `docker stop` and `podman stop` wait by default.
# Top-level admin: and drain_timeout: lines of the example are replaced (a multi-line admin:
# block there would leave its indented lines behind and fail --check-config). The greps fail the
# build if the listen substitution stops matching or the summary lacks the admin listener;
# --check-config fails it if the result is not a valid configuration.
RUN mkdir -p /out \
 && sed -e 's/^listen: 127\.0\.0\.1:8080$/listen: 0.0.0.0:8080/' \
        -e '/^admin:/d' -e '/^drain_timeout:/d' conf/cachecar.yaml > /out/cachecar.yaml \
 && printf '%s\n' '' '# Set by the Dockerfile for the container.' \
      'admin: {listen: 0.0.0.0:9901, token_env: CACHECAR_ADMIN_TOKEN}' 'drain_timeout: 8s' \
      >> /out/cachecar.yaml \
 && grep -q '^listen: 0\.0\.0\.0:8080$' /out/cachecar.yaml \
 && /build/src/cachecar --check-config /out/cachecar.yaml > /tmp/check-config.txt \
 && cat /tmp/check-config.txt \
 && grep -q '^admin: .*0\.0\.0\.0:9901' /tmp/check-config.txt

# ---- runtime stage: the binary and the shared libraries it links, nothing else ----------------
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libevent-2.1-7 libevent-pthreads-2.1-7 libhiredis0.14 libyaml-cpp0.7 libxxhash0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cachecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin cachecar

COPY --from=build /build/src/cachecar /usr/local/bin/cachecar
COPY --from=build /out/cachecar.yaml /etc/cachecar/cachecar.yaml

# A numeric user, so that Kubernetes can verify runAsNonRoot without a securityContext.runAsUser.
USER 10001:10001
# 8080: the proxy; 9901: the admin listener (/healthz, /readyz, /metrics, /purge).
EXPOSE 8080 9901
STOPSIGNAL SIGTERM
# Exec form: cachecar is PID 1 and receives SIGTERM itself (it drains and exits 0). No
# HEALTHCHECK: the image has no HTTP client to run one; probe /healthz and /readyz on 9901 from
# outside (Kubernetes: httpGet probes, see k8s/).
ENTRYPOINT ["/usr/local/bin/cachecar", "--config", "/etc/cachecar/cachecar.yaml"]
