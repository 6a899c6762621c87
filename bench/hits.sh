#!/usr/bin/env bash
# Cache-hit throughput of cachecar against nginx proxy_cache, measured in the same run against the
# same origin. See bench/README.md for what it measures and how to read the output.
#
#   bench/hits.sh [--binary PATH] [--sizes 1k,16k,256k] [--duration 10] [--repeats 3]
#                 [--connections 64] [--workers 1] [--port-base 29480] [--pin|--no-pin]
#                 [--server-cpu 0] [--wrk-cpu 1] [--keep]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

binary="$root/build/src/cachecar"
sizes="1k,16k,256k"
duration=10
repeats=3
connections=64
workers=1
port_base=29480
server_cpu=0
wrk_cpu=1
keep=0
if [ "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)" -ge 2 ]; then
  pin=1
else
  pin=0
fi

usage() {
  cat <<'EOF'
usage: bench/hits.sh [options]

  --binary PATH       cachecar binary (default: <repo>/build/src/cachecar)
  --sizes LIST        body sizes, comma separated, suffix k or m (default: 1k,16k,256k)
  --duration SECONDS  length of each wrk run (default: 10)
  --repeats N         runs per size and server; the table shows the median (default: 3)
  --connections N     wrk connections (default: 64); wrk always uses 1 thread
  --workers N         cachecar workers and nginx worker processes (default: 1)
  --port-base PORT    first loopback port tried for the three servers (default: 29480)
  --pin / --no-pin    servers on --server-cpu, wrk on --wrk-cpu with taskset
                      (default: on when the machine has 2 CPUs or more)
  --server-cpu LIST   CPU list for the servers when pinned (default: 0)
  --wrk-cpu LIST      CPU list for wrk when pinned (default: 1)
  --keep              keep the scratch directory (configs, logs, raw results), print its path
EOF
}

die() {
  echo "hits.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --sizes) sizes="${2:?--sizes needs a list}"; shift 2 ;;
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --repeats) repeats="${2:?--repeats needs a number}"; shift 2 ;;
    --connections) connections="${2:?--connections needs a number}"; shift 2 ;;
    --workers) workers="${2:?--workers needs a number}"; shift 2 ;;
    --port-base) port_base="${2:?--port-base needs a port}"; shift 2 ;;
    --server-cpu) server_cpu="${2:?--server-cpu needs a CPU list}"; shift 2 ;;
    --wrk-cpu) wrk_cpu="${2:?--wrk-cpu needs a CPU list}"; shift 2 ;;
    --pin) pin=1; shift ;;
    --no-pin) pin=0; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

for n in duration repeats connections workers port_base; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "--${n//_/-} must be a positive integer, got '${!n}'"
done
[ "$port_base" -le 65000 ] || die "--port-base must be at most 65000"
[ -x "$binary" ] || die "cachecar binary not found: $binary" \
  "(build it with scripts/dev.sh build, or pass --binary PATH)"

# --- tools ---------------------------------------------------------------------------------------

# Installs the Debian packages whose command is missing; apt-get update runs only in that case.
install_missing() {
  local missing=() pkg
  for pkg in wrk nginx curl; do
    # Debian puts nginx in /usr/sbin, which is not in every user's PATH.
    if ! command -v "$pkg" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$pkg" ]; then
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
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
}
install_missing
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in setsid getconf; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
if [ "$pin" -eq 1 ]; then
  command -v taskset >/dev/null 2>&1 || die "--pin needs taskset (Debian package util-linux)"
fi

# Raise the open-file limit as far as allowed: each proxy holds client plus upstream sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

clk_tck="$(getconf CLK_TCK)"

# --- scratch dir and cleanup ---------------------------------------------------------------------

scratch="$(mktemp -d "${TMPDIR:-/tmp}/cachecar-hits.XXXXXX")"
pids=()

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid log
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # Give them a moment to exit cleanly, then force it: no process of ours may outlive the script.
  local deadline=$((SECONDS + 3))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
    echo >&2
    echo "hits.sh: interrupted" >&2
  elif [ "$status" -ne 0 ] && [ "$keep" -eq 0 ]; then
    for log in "$scratch"/*.log "$scratch"/*/error.log; do
      if [ -s "$log" ]; then
        echo "--- last lines of ${log#"$scratch"/} ---" >&2
        tail -n 20 "$log" >&2
      fi
    done
  fi
  if [ "$keep" -eq 1 ]; then
    echo "scratch directory kept: $scratch" >&2
  else
    rm -rf "$scratch"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Scratch files are read by nginx, which may run as another user when started by root.
chmod 755 "$scratch"
mkdir -p "$scratch/www" "$scratch/origin" "$scratch/peer/cache"

# --- bodies --------------------------------------------------------------------------------------

# to_bytes 16k -> 16384
to_bytes() {
  case "$1" in
    *k) echo $((${1%k} * 1024)) ;;
    *m) echo $((${1%m} * 1024 * 1024)) ;;
    *) echo "$1" ;;
  esac
}

IFS=',' read -r -a size_labels <<<"${sizes,,}"
[ ${#size_labels[@]} -gt 0 ] || die "--sizes is empty"
for label in "${size_labels[@]}"; do
  [[ "$label" =~ ^[1-9][0-9]*[km]?$ ]] || die "bad size '$label' (use e.g. 512, 16k, 1m)"
  [ ! -e "$scratch/www/$label.bin" ] || die "size '$label' given twice"
  head -c "$(to_bytes "$label")" /dev/urandom >"$scratch/www/$label.bin"
done
chmod -R a+rX "$scratch/www"

# --- ports ---------------------------------------------------------------------------------------

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
  else
    # Something accepts connections there: taken. (A refused connect means free, barring races.)
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# free_port FROM: the first port >= FROM that nobody listens on.
free_port() {
  local p
  for ((p = $1; p < $1 + 200 && p < 65536; p++)); do
    if ! port_in_use "$p"; then
      echo "$p"
      return
    fi
  done
  die "no free loopback port in $1..$(($1 + 199))"
}
origin_port="$(free_port "$port_base")"
nginx_port="$(free_port $((origin_port + 1)))"
cachecar_port="$(free_port $((nginx_port + 1)))"

# --- configs -------------------------------------------------------------------------------------

# nginx in the foreground with everything (pid, logs, temp files) in its own scratch directory.
# One worker runs as a single process (master_process off), like cachecar's single process, so
# its CPU time is one /proc entry.
nginx_main_conf() {
  local dir="$1" master="off"
  if [ "$workers" -gt 1 ]; then
    master="on"
  fi
  cat <<EOF
daemon off;
master_process $master;
worker_processes $workers;
worker_rlimit_nofile $((connections * 4 + 1024));
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events {
    worker_connections $((connections * 2 + 1024));
}
EOF
}

nginx_http_common() {
  local dir="$1"
  cat <<EOF
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    types { application/octet-stream bin; }
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    # wrk keeps its connections for the whole run; do not make it reconnect every 1000 requests.
    keepalive_requests 10000000;
    keepalive_timeout 120s;
EOF
}

{
  nginx_main_conf "$scratch/origin"
  cat <<EOF
http {
$(nginx_http_common "$scratch/origin")
    # One line per request that reached the origin: counted around each run.
    access_log $scratch/origin/access.log;
    server {
        listen 127.0.0.1:$origin_port;
        root $scratch/www;
        # Readiness probe of the script: answered here, never logged, not cacheable.
        location = /ready {
            access_log off;
            return 204;
        }
        location / {
            add_header Cache-Control "public, max-age=3600" always;
        }
    }
}
EOF
} >"$scratch/origin/nginx.conf"

{
  nginx_main_conf "$scratch/peer"
  cat <<EOF
http {
$(nginx_http_common "$scratch/peer")
    access_log off;
    proxy_cache_path $scratch/peer/cache levels=1:2 keys_zone=hits:16m max_size=4g inactive=1h
                     use_temp_path=off;
    upstream origin {
        server 127.0.0.1:$origin_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hits;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
    }
}
EOF
} >"$scratch/peer/nginx.conf"

# --- servers -------------------------------------------------------------------------------------

server_pin=()
wrk_pin=()
if [ "$pin" -eq 1 ]; then
  server_pin=(taskset -c "$server_cpu")
  wrk_pin=(taskset -c "$wrk_cpu")
fi

# wait_http NAME PID PORT: until the server answers HTTP; fails if it died or took over 10 s.
wait_http() {
  local name="$1" pid="$2" port="$3" i
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || die "$name exited during startup"
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/ready"; then
      return
    fi
    sleep 0.05
  done
  die "$name did not answer on 127.0.0.1:$port within 10 s"
}

# taskset execs its command, so $! is the server's own pid.
"${server_pin[@]}" "$nginx_bin" -p "$scratch/origin" -e "$scratch/origin/error.log" \
  -c "$scratch/origin/nginx.conf" >"$scratch/origin.log" 2>&1 &
origin_pid=$!
pids+=("$origin_pid")
"${server_pin[@]}" "$nginx_bin" -p "$scratch/peer" -e "$scratch/peer/error.log" \
  -c "$scratch/peer/nginx.conf" >"$scratch/nginx-cache.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")
"${server_pin[@]}" "$binary" --listen "127.0.0.1:$cachecar_port" \
  --upstream "http://127.0.0.1:$origin_port" --workers "$workers" >"$scratch/cachecar.log" 2>&1 &
cachecar_pid=$!
pids+=("$cachecar_pid")

wait_http origin "$origin_pid" "$origin_port"
wait_http nginx-cache "$nginx_pid" "$nginx_port"
wait_http cachecar "$cachecar_pid" "$cachecar_port"

servers=(cachecar nginx-cache)
declare -A port_of=([cachecar]=$cachecar_port [nginx-cache]=$nginx_port)
declare -A pid_of=([cachecar]=$cachecar_pid [nginx-cache]=$nginx_pid)
declare -A hit_header_of=([cachecar]=x-cache [nginx-cache]=x-cache-status)

# --- warm-up and hit check -----------------------------------------------------------------------

# The second request of each URL must be a hit with the exact body, else the numbers mean nothing.
for label in "${size_labels[@]}"; do
  for server in "${servers[@]}"; do
    url="http://127.0.0.1:${port_of[$server]}/$label.bin"
    for attempt in 1 2; do
      curl -sS --fail --max-time 10 -D "$scratch/headers" -o "$scratch/body" "$url" \
        || die "$server: GET $url failed (attempt $attempt)"
    done
    header="${hit_header_of[$server]}"
    status="$(tr -d '\r' <"$scratch/headers" \
      | awk -F': *' -v h="$header" 'tolower($1) == h { print $2 }')"
    if [ "$status" != "HIT" ]; then
      echo "--- response headers of the second request ---" >&2
      tr -d '\r' <"$scratch/headers" >&2
      die "$server: second GET $url was not a hit ($header: '${status:-absent}')"
    fi
    cmp -s "$scratch/body" "$scratch/www/$label.bin" \
      || die "$server: the cached body of $url differs from the origin's file"
  done
done
echo "warm-up: every URL is a HIT on cachecar and nginx-cache"

# --- measurement ---------------------------------------------------------------------------------

# wrk prints its own summary; this adds one exact machine-readable line at the end.
cat >"$scratch/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("HITS requests=%d duration_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

# cpu_ticks PID: user + system clock ticks of every thread of PID, plus its children when nginx
# runs with a master process (--workers > 1).
cpu_ticks() {
  local root_pid="$1" total=0 pid stat rest
  local -a f tree=("$root_pid")
  if [ "$workers" -gt 1 ]; then
    for stat in /proc/[0-9]*/stat; do
      rest="$(cat "$stat" 2>/dev/null)" || continue
      # The command name may hold spaces and parentheses: fields are counted after its ") ".
      rest="${rest##*) }"
      read -r -a f <<<"$rest"
      # f[1] is the parent pid (field 4 of proc(5)).
      if [ "${f[1]}" = "$root_pid" ]; then
        pid="${stat#/proc/}"
        tree+=("${pid%/stat}")
      fi
    done
  fi
  for pid in "${tree[@]}"; do
    rest="$(cat "/proc/$pid/stat" 2>/dev/null)" || continue
    rest="${rest##*) }"
    read -r -a f <<<"$rest"
    # f[11] and f[12] are utime and stime (fields 14 and 15 of proc(5)).
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

origin_lines() {
  wc -l <"$scratch/origin/access.log"
}

# One line per run: size server req/s p99_ms cpu_us_per_req origin_requests wrk_errors
results="$scratch/results"
: >"$results"
total_runs=$((repeats * ${#size_labels[@]} * ${#servers[@]}))
run=0
for ((rep = 0; rep < repeats; rep++)); do
  for ((si = 0; si < ${#size_labels[@]}; si++)); do
    label="${size_labels[$si]}"
    # Alternate which server goes first so slow drift (thermal, neighbours) hits both alike.
    if (((rep + si) % 2 == 0)); then
      order=(cachecar nginx-cache)
    else
      order=(nginx-cache cachecar)
    fi
    for server in "${order[@]}"; do
      run=$((run + 1))
      url="http://127.0.0.1:${port_of[$server]}/$label.bin"
      printf 'run %d/%d: %-11s %-5s ' "$run" "$total_runs" "$server" "$label"
      pid="${pid_of[$server]}"
      kill -0 "$pid" 2>/dev/null || die "$server is no longer running"
      origin_before="$(origin_lines)"
      cpu_before="$(cpu_ticks "$pid")"
      # wrk stops early on SIGINT and reports as if the run were complete, so it runs in its own
      # session, out of reach of Ctrl-C, and bash waits with `wait`, which a trapped signal
      # interrupts at once: Ctrl-C ends the whole benchmark, never just the current run.
      setsid "${wrk_pin[@]}" wrk -t1 -c"$connections" -d"${duration}s" --latency \
        -s "$scratch/report.lua" "$url" >"$scratch/wrk.out" 2>&1 &
      pids+=("$!")
      wrk_status=0
      wait "$!" || wrk_status=$?
      unset 'pids[-1]'
      if [ "$wrk_status" -ne 0 ]; then
        cat "$scratch/wrk.out" >&2
        die "wrk failed against $server (exit status $wrk_status)"
      fi
      kill -0 "$pid" 2>/dev/null || die "$server exited during the run"
      cpu_after="$(cpu_ticks "$pid")"
      origin_after="$(origin_lines)"
      line="$(grep '^HITS ' "$scratch/wrk.out")" || {
        cat "$scratch/wrk.out" >&2
        die "no summary line in wrk's output"
      }
      # line: HITS requests=N duration_us=N p99_us=N errors=N
      read -r requests duration_us p99_us errors <<<"$(awk '{
          for (i = 2; i <= 5; i++) { sub(/.*=/, "", $i); printf "%s ", $i }
        }' <<<"$line")"
      [ "$requests" -gt 0 ] || die "wrk completed no request against $server"
      awk -v s="$label" -v srv="$server" -v req="$requests" -v dur="$duration_us" \
        -v p99="$p99_us" -v err="$errors" -v cpu=$((cpu_after - cpu_before)) -v tck="$clk_tck" \
        -v orig=$((origin_after - origin_before)) 'BEGIN {
          printf "%s %s %.1f %.3f %.3f %d %d\n", s, srv, req / (dur / 1e6), p99 / 1000,
            cpu / tck * 1e6 / req, orig, err
        }' >>"$results"
      tail -n 1 "$results" | awk '{
        printf "%10.0f req/s  p99 %7.2f ms  cpu %6.2f us/req  origin %d  errors %d\n",
          $3, $4, $5, $6, $7
      }'
    done
  done
done

# --- report --------------------------------------------------------------------------------------

# summary SIZE SERVER -> "median_rps min_rps max_rps median_p99 median_cpu origin_sum errors_sum"
summary() {
  awk -v s="$1" -v srv="$2" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) { a[j + 1] = a[j] }
        a[j + 1] = t
      }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    $1 == s && $2 == srv {
      n++; r[n] = $3; p[n] = $4; c[n] = $5; o += $6; e += $7
      if (n == 1 || $3 < lo) { lo = $3 }
      if (n == 1 || $3 > hi) { hi = $3 }
    }
    END {
      printf "%.1f %.1f %.1f %.3f %.3f %d %d\n", median(r, n), lo, hi, median(p, n),
        median(c, n), o, e
    }
  ' "$results"
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) { printf "%.2f", a / b } else { printf "n/a" } }'
}

pinning="no"
if [ "$pin" -eq 1 ]; then
  pinning="servers on cpu $server_cpu, wrk on cpu $wrk_cpu"
fi
echo
printf 'cache hits: %d x %ds per size and server, %d connections, %d worker(s), pinned: %s\n' \
  "$repeats" "$duration" "$connections" "$workers" "$pinning"
echo
printf '%-6s %-12s %27s %8s %11s %8s %7s\n' size server "req/s median (min..max)" "p99 ms" \
  "cpu us/req" origin errors
declare -A med_rps med_p99 med_cpu
origin_total=0
errors_total=0
for label in "${size_labels[@]}"; do
  for server in "${servers[@]}"; do
    read -r rps lo hi p99 cpu orig errs <<<"$(summary "$label" "$server")"
    med_rps[$label.$server]=$rps
    med_p99[$label.$server]=$p99
    med_cpu[$label.$server]=$cpu
    origin_total=$((origin_total + orig))
    errors_total=$((errors_total + errs))
    printf '%-6s %-12s %9.0f (%7.0f..%7.0f) %8.2f %11.2f %8d %7d\n' "$label" "$server" "$rps" \
      "$lo" "$hi" "$p99" "$cpu" "$orig" "$errs"
  done
done

echo
echo "cachecar / nginx-cache (req/s: higher is better for cachecar; p99, cpu: lower is better)"
printf '%-6s %8s %8s %11s\n' size "req/s" "p99" "cpu us/req"
for label in "${size_labels[@]}"; do
  printf '%-6s %8s %8s %11s\n' "$label" \
    "$(ratio "${med_rps[$label.cachecar]}" "${med_rps[$label.nginx-cache]}")" \
    "$(ratio "${med_p99[$label.cachecar]}" "${med_p99[$label.nginx-cache]}")" \
    "$(ratio "${med_cpu[$label.cachecar]}" "${med_cpu[$label.nginx-cache]}")"
done
echo
if [ "$errors_total" -ne 0 ]; then
  echo "warning: wrk counted $errors_total errors (socket errors, timeouts, non-2xx): see 'errors'"
fi
if [ "$origin_total" -ne 0 ]; then
  echo "warning: $origin_total requests reached the origin during the hit runs: see 'origin'"
fi

# The headline: 16k when measured, else the middle size.
headline="16k"
if [ -z "${med_rps[16k.cachecar]:-}" ]; then
  headline="${size_labels[$((${#size_labels[@]} / 2))]}"
fi
echo "cachecar/nginx hit req/s ratio ($headline):" \
  "$(ratio "${med_rps[$headline.cachecar]}" "${med_rps[$headline.nginx-cache]}")"
