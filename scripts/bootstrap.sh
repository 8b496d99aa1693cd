#!/usr/bin/env bash
# Prepare a machine to run and test city-os. Idempotent; a second call takes well under 3 s.
#
#   scripts/bootstrap.sh [DSN ...]
#
# 1. .venv (python3.11, else python3 >= 3.11) with `pip install -e '.[dev]'`, re-run only when
#    pyproject.toml is newer than the stamp file .venv/.cityos-installed.
#    promtool (for the deploy checks of tests/unit/deploy) extracted into .venv/bin from Debian's
#    prometheus package when missing: downloaded, not installed (installing would start a
#    Prometheus server). Where apt is missing or the download fails: a warning, and those checks
#    are skipped, naming why.
# 2. PostGIS available in every PostgreSQL server named by the DSNs. Missing on a local server
#    (127.0.0.1 / localhost / ::1 / unix socket): installed with apt when root, otherwise the
#    command to run is printed and we exit 1. Missing on a remote server: reported, exit 1.
# 3. The database named in each DSN exists (created from the server's `postgres` database).
#
# DSNs: the arguments, else $CITYOS_DATABASE_URL and $CITYOS_TEST_DATABASE_URL (with defaults).
set -euo pipefail

cd "$(dirname "$0")/.."

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# --- 1. virtualenv ---------------------------------------------------------------------------

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    python=$(find_python) || die "Python >= 3.11 not found (tried python3.11, python3)"
    log "creating .venv with $python ($("$python" --version 2>&1))"
    "$python" -m venv .venv
fi

stamp=.venv/.cityos-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "installing city-os and dev tools into .venv (pyproject.toml changed)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi

if [ ! -x .venv/bin/promtool ] && command -v apt-get >/dev/null 2>&1 &&
    command -v dpkg-deb >/dev/null 2>&1; then
    log "extracting promtool from Debian's prometheus package into .venv/bin (deploy checks)"
    tmp=$(mktemp -d)
    download() { (cd "$tmp" && apt-get download prometheus </dev/null >/dev/null 2>&1); }
    if download || { [ "$(id -u)" -eq 0 ] && apt-get update </dev/null >/dev/null 2>&1 && download; }; then
        dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
        mv "$tmp/usr/bin/promtool" .venv/bin/promtool
    else
        log "warning: Debian's prometheus package could not be downloaded: no promtool checks"
    fi
    rm -rf "$tmp"
fi

# --- 2 and 3. PostgreSQL: PostGIS and databases ---------------------------------------------

if [ "$#" -gt 0 ]; then
    dsns=("$@")
else
    dsns=(
        "${CITYOS_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/cityos}"
        "${CITYOS_TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/cityos_test}"
    )
fi

# `pg.py check DSN...` prints one line per DSN: "<local 0|1> <major> <postgis 0|1> <host:port>".
# `pg.py createdb DSN...` creates each missing database. Uses asyncpg from the venv, so no psql
# is needed on machines that talk to a remote PostgreSQL.
pg() {
    .venv/bin/python - "$@" <<'PY'
import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg

LOCAL_HOSTS = {"", "127.0.0.1", "localhost", "::1", "[::1]"}


def describe(dsn: str) -> tuple[bool, str, str]:
    """(is local, host:port, database name) of a postgresql:// DSN."""
    parts = urlsplit(dsn)
    host = parts.hostname or ""
    query_host = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("host", "")
    if not host and query_host:
        host = query_host
    local = host in LOCAL_HOSTS or host.startswith("/")
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return local, f"{host or 'localhost'}:{parts.port or 5432}", database


async def connect_admin(dsn: str) -> asyncpg.Connection:
    _, where, _ = describe(dsn)
    try:
        return await asyncio.wait_for(asyncpg.connect(dsn, database="postgres"), 10)
    except Exception as exc:  # any failure here means "cannot reach PostgreSQL"
        sys.exit(f"bootstrap: cannot connect to PostgreSQL at {where}: {exc}")


async def check(dsns: list[str]) -> None:
    for dsn in dsns:
        local, where, _ = describe(dsn)
        conn = await connect_admin(dsn)
        try:
            major = int(await conn.fetchval("SHOW server_version_num")) // 10000
            postgis = await conn.fetchval(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'"
            )
        finally:
            await conn.close()
        print(int(local), major, int(bool(postgis)), where)


async def createdb(dsns: list[str]) -> None:
    for dsn in dsns:
        _, where, database = describe(dsn)
        conn = await connect_admin(dsn)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
            if not exists:
                # CREATE DATABASE takes no bind parameters: quote the identifier ourselves.
                ident = '"' + database.replace('"', '""') + '"'
                await conn.execute(f"CREATE DATABASE {ident}")
                print(f"bootstrap: created database {database} on {where}", file=sys.stderr)
        finally:
            await conn.close()


command, *args = sys.argv[1:]
asyncio.run({"check": check, "createdb": createdb}[command](args))
PY
}

install_postgis() { # major
    local package="postgresql-$1-postgis-3"
    if [ "$(id -u)" -ne 0 ]; then
        die "PostGIS is not installed in the local PostgreSQL $1. Install it as root, then re-run:
    apt-get install -y $package"
    fi
    log "installing $package"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists of a fresh machine are often empty or stale: update and retry on failure.
    if ! apt-get install -y --no-install-recommends "$package" </dev/null; then
        apt-get update </dev/null
        apt-get install -y --no-install-recommends "$package" </dev/null
    fi
}

report=$(pg check "${dsns[@]}")
installed_majors=" "
while read -r local major postgis where; do
    [ "$postgis" = 1 ] && continue
    if [ "$local" != 1 ]; then
        die "PostGIS 3 is not available in PostgreSQL $major at $where; install it on that server"
    fi
    case "$installed_majors" in *" $major "*) continue ;; esac
    install_postgis "$major"
    installed_majors="$installed_majors$major "
done <<<"$report"

if [ "$installed_majors" != " " ]; then
    # Extensions are found on disk: no server restart needed. Check that it worked.
    report=$(pg check "${dsns[@]}")
    while read -r _ major postgis where; do
        [ "$postgis" = 1 ] || die "PostGIS still not available in PostgreSQL $major at $where"
    done <<<"$report"
fi

pg createdb "${dsns[@]}"
