#!/bin/sh
# Starts nginx in the foreground on ORIGIN_LISTEN (default 127.0.0.1:8000: the app port of the
# pod in k8s/deployment.yaml). nginx cannot read the address from the environment, hence the
# generated configuration file.
set -eu
listen="${ORIGIN_LISTEN:-127.0.0.1:8000}"
mkdir -p /tmp/origin/slow
# The body of /slow/body.txt (nginx.conf.in).
head -c 49152 /dev/zero | tr '\0' 'x' >/tmp/origin/slow/body.txt
sed "s|@LISTEN@|${listen}|" /etc/origin/nginx.conf.in > /tmp/origin/nginx.conf
exec nginx -c /tmp/origin/nginx.conf -e stderr -g 'daemon off;'
