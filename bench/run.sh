#!/bin/sh
# bench/run.sh: builds ptload, ptyrelay and ptyread, then runs every ptload scenario beside its
# bare-PTY baseline (bench/ptyread.c) in the same run on the same machine. Each relay is started
# fresh by this script on 127.0.0.1 with its own temporary data dir. Results: bench/results/*.json
# (one per run), machine.json, and table.md (the figures with their ratios to the baselines).
#
#   bench/run.sh [--quick]      --quick: small counts, for trying the script out (not for docs)
#
# Environment: BUILD (default build-bench), OUT (default bench/results).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
OUT=${OUT:-$ROOT/bench/results}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1

if [ $QUICK = 1 ]; then
    TP_BYTES=$((32 << 20)); MULTI_BYTES=$((8 << 20)); ECHO_N=2000; FLOOD_N=300; IDLE_N=500
    FAN_BYTES=$((16 << 20)); SLOW_BYTES=$((64 << 20)); SLOW_HOLD=8; CHURN_S=5
else
    TP_BYTES=$((256 << 20)); MULTI_BYTES=$((64 << 20)); ECHO_N=10000; FLOOD_N=2000; IDLE_N=4000
    FAN_BYTES=$((64 << 20)); SLOW_BYTES=$((256 << 20)); SLOW_HOLD=15; CHURN_S=20
fi
GEN_PATTERN=0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_

echo "bench: building in $BUILD" >&2
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target ptload ptyrelay ptyread >/dev/null
BIN=$BUILD/bin
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/table.md

WORK=$(mktemp -d /tmp/ptyrelay-bench.XXXXXX)
RELAY_PID=
stop_relay() {
    if [ -n "$RELAY_PID" ]; then
        kill "$RELAY_PID" 2>/dev/null || true
        wait "$RELAY_PID" 2>/dev/null || true
        RELAY_PID=
    fi
}
trap 'stop_relay; rm -rf "$WORK"' EXIT INT TERM

# start_relay NAME [flags...]: a fresh relay with its own data dir; sets URL, TOKEN_FILE, RELAY_PID.
start_relay() {
    name=$1; shift
    stop_relay
    dir=$WORK/$name
    mkdir -p "$dir"
    "$BIN/ptyrelay" serve --listen 127.0.0.1:0 --data "$dir/data" "$@" >"$dir/relay.log" 2>&1 &
    RELAY_PID=$!
    i=0
    while ! grep -q 'listening on ws://127.0.0.1:' "$dir/relay.log"; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 "$RELAY_PID" 2>/dev/null; then
            echo "bench: relay $name did not start:" >&2
            cat "$dir/relay.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    port=$(grep -o 'listening on ws://127.0.0.1:[0-9]*' "$dir/relay.log" | head -1 | sed 's/.*://')
    URL=ws://127.0.0.1:$port/ptc1
    TOKEN_FILE=$dir/data/admin.token
}

# load NAME SCENARIO [options...]: one ptload run into $OUT/NAME.json (a failed check is kept).
load() {
    name=$1; shift
    echo "bench: $name: ptload $*" >&2
    "$BIN/ptload" --quiet --url "$URL" --token-file "$TOKEN_FILE" --relay-pid "$RELAY_PID" "$@" \
        >"$OUT/$name.json" || echo "bench: $name: ptload reported a failed check (see the JSON)" >&2
}

# Machine and load at the start.
{
    printf '{"kernel": "%s", ' "$(uname -r)"
    printf '"cpu": "%s", ' "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    printf '"cpus": %s, ' "$(nproc)"
    printf '"mem_kb": %s, ' "$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
    printf '"loadavg_start": "%s", ' "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '"quick": %s, ' "$([ $QUICK = 1 ] && echo true || echo false)"
    printf '"date": "%s"}\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$WORK/machine.json"

# ---- baselines: the bare PTY, same commands ----------------------------------------------------
GEN_CMD="stty raw -echo; yes $GEN_PATTERN | head -c $TP_BYTES"
echo "bench: baseline: ptyread throughput, $TP_BYTES bytes" >&2
"$BIN/ptyread" throughput --cmd "$GEN_CMD" --bytes "$TP_BYTES" >"$OUT/baseline_throughput.json"
echo "bench: baseline: ptyread echo, $ECHO_N samples" >&2
"$BIN/ptyread" echo --samples "$ECHO_N" >"$OUT/baseline_echo.json"

# ---- throughput and fan-out: a ring big enough for the whole stream, so a client slower than
# the PTY is never skipped ahead and every byte is counted ---------------------------------------
start_relay bulk --ring-max $((TP_BYTES * 2))
load throughput_1 throughput --sessions 1 --bytes "$TP_BYTES"
load throughput_4x2 throughput --sessions 4 --connections 2 --bytes "$MULTI_BYTES"
load fanout_4 fanout --viewers 4 --bytes "$FAN_BYTES"

# ---- loss at exit with many short programs, on the default ring ---------------------------------
start_relay exits
load exits_200 throughput --sessions 200 --connections 4 --bytes $((1 << 20))

# ---- echo, idle and beside a flood -------------------------------------------------------------
start_relay echo
load echo_idle echo --samples "$ECHO_N"
load echo_flood echo --samples "$FLOOD_N" --flood 1 --seconds 300
load echo_flood_window echo --samples "$FLOOD_N" --flood 1 --window 65536 --seconds 300

# ---- idle sessions: a fresh relay, as many PTYs as the kernel has left ----------------------------
pty_left=$(( $(cat /proc/sys/kernel/pty/max) - $(cat /proc/sys/kernel/pty/nr) - 40 ))
[ "$IDLE_N" -gt "$pty_left" ] && IDLE_N=$pty_left
start_relay idle
load idle idle --sessions "$IDLE_N" --connections 4 --samples 2000

# ---- a stalled client (a short stall limit, so the drop happens within the run) ------------------
start_relay slow --stall-timeout 5
load slow slow --viewers 2 --bytes "$SLOW_BYTES" --seconds "$SLOW_HOLD"

# ---- churn ---------------------------------------------------------------------------------------
start_relay churn
load churn churn --seconds "$CHURN_S" --rate 50
stop_relay

sed "s/}\$/, \"loadavg_end\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}/" "$WORK/machine.json" >"$OUT/machine.json"
python3 "$ROOT/bench/table.py" "$OUT" >"$OUT/table.md"
cat "$OUT/table.md"
