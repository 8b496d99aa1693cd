#!/bin/sh
# Builds CITYOS_DATABASE_URL from its parts when it is not given, reading the password from a
# file (a compose or Kubernetes secret), so no secret is baked into the image or the compose file:
#   CITYOS_DATABASE_HOST, CITYOS_DATABASE_PORT (5432), CITYOS_DATABASE_NAME, CITYOS_DATABASE_USER,
#   CITYOS_DATABASE_PASSWORD_FILE, CITYOS_DATABASE_OPTIONS (e.g. sslmode=require)
set -eu
if [ -z "${CITYOS_DATABASE_URL:-}" ] && [ -n "${CITYOS_DATABASE_HOST:-}" ]; then
    password=""
    if [ -n "${CITYOS_DATABASE_PASSWORD_FILE:-}" ]; then
        password=$(python -c 'import sys, urllib.parse; print(urllib.parse.quote(open(sys.argv[1]).read().strip(), safe=""))' "$CITYOS_DATABASE_PASSWORD_FILE")
    fi
    auth="${CITYOS_DATABASE_USER:-cityos}${password:+:$password}"
    url="postgresql://$auth@$CITYOS_DATABASE_HOST:${CITYOS_DATABASE_PORT:-5432}/${CITYOS_DATABASE_NAME:-cityos}"
    CITYOS_DATABASE_URL="$url${CITYOS_DATABASE_OPTIONS:+?$CITYOS_DATABASE_OPTIONS}"
    export CITYOS_DATABASE_URL
fi
unset CITYOS_DATABASE_HOST CITYOS_DATABASE_PORT CITYOS_DATABASE_NAME CITYOS_DATABASE_USER \
    CITYOS_DATABASE_PASSWORD_FILE CITYOS_DATABASE_OPTIONS
exec city-os "$@"
