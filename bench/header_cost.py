#!/usr/bin/env python3
"""CPU a cachecar process spends per request: a hostile head against an ordinary one of the
same size.

The hostile request lists N field names in Connection and carries those N fields (the
quadratic case of hop-by-hop removal: one scan of the field list per token); the ordinary one
is padded to the same byte count with one field. Both go to a route that is not cached, so
every request is forwarded to the app. CPU time is read from /proc/<pid>/task/*/schedstat
(nanoseconds on a CPU, all threads) before and after each batch.

    bench/header_cost.py BUILD/src/cachecar [--tokens 2000] [--requests 300]

Prints microseconds of cachecar CPU per request for each kind, and their ratio.
"""
import argparse
import http.server
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time


class Origin(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ns(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total


def wait_listening(port, limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def read_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return status, rest[length:]


def run_batch(port, request, count):
    sock = socket.create_connection(("127.0.0.1", port))
    buf = b""
    for _ in range(count):
        sock.sendall(request)
        status, buf = read_response(sock, buf)
        if status != 200:
            raise RuntimeError(f"status {status}")
    sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    origin = ThreadingServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = free_port()
    config = (
        f"listen: 127.0.0.1:{port}\nupstream: http://127.0.0.1:{origin.server_address[1]}\n"
        "workers: 1\nlog_level: error\nroutes:\n  - {match: /pass/, cache: off}\n"
    )
    # Older builds do not know max_header_fields (they have no field limit at all): they get
    # the file without it.
    fields_limit = args.tokens + 50
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config + f"limits: {{max_header_fields: {fields_limit}}}\n")
        path_with_limit = f.name
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config)
        path_plain = f.name
    check = subprocess.run([args.binary, "--check-config", path_with_limit], capture_output=True)
    config_path = path_with_limit if check.returncode == 0 else path_plain

    proc = subprocess.Popen([args.binary, "--config", config_path])
    try:
        if not wait_listening(port):
            sys.exit("cachecar did not start")
        names = [f"x-f{i}" for i in range(args.tokens)]
        hostile = (
            "GET /pass/page HTTP/1.1\r\nHost: shop.test\r\nConnection: keep-alive, "
            + ", ".join(names)
            + "\r\n"
            + "".join(f"{n}: v\r\n" for n in names)
            + "\r\n"
        ).encode()
        plain_head = "GET /pass/page HTTP/1.1\r\nHost: shop.test\r\nX-Pad: "
        pad = len(hostile) - len(plain_head) - len("\r\n\r\n")
        ordinary = (plain_head + "a" * pad + "\r\n\r\n").encode()
        assert len(ordinary) == len(hostile)

        run_batch(port, ordinary, 20)  # warm up the upstream pool
        results = {}
        for label, request in (("ordinary", ordinary), ("hostile", hostile)):
            before = cpu_ns(proc.pid)
            run_batch(port, request, args.requests)
            results[label] = (cpu_ns(proc.pid) - before) / args.requests / 1000.0
        print(f"request head: {len(hostile)} bytes, {args.tokens} Connection tokens and fields")
        for label, us in results.items():
            print(f"{label:9s} {us:10.1f} us cachecar CPU per request")
        print(f"ratio     {results['hostile'] / results['ordinary']:10.2f} (hostile / ordinary)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        origin.shutdown()
        os.unlink(path_with_limit)
        os.unlink(path_plain)


if __name__ == "__main__":
    main()
