#!/usr/bin/env bash
# Idle CPU of a three-node relayd cluster on loopback, per commit_timeout:
# the CPU time each node uses in 10 s with no clients (docs/operations.md,
# "What is on disk"). Usage: scripts/idle-cpu.sh [COMMIT_TIMEOUT ...]
# (default: 1ms 5ms 50ms). Ports 17400-17421 must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/relayd" ./cmd/relayd
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
ready() { for _ in $(seq 100); do curl -sf "http://$1/readyz" >/dev/null && return 0; sleep 0.1; done; echo "node $1 not ready" >&2; return 1; }
for ct in "${@:-1ms 5ms 50ms}"; do
  for c in $ct; do
    d="$work/$c"
    "$work/relayd" --data-dir "$d/1" --listen 127.0.0.1:17400 --raft-listen 127.0.0.1:17401 --commit-timeout "$c" --log-level warn & p1=$!
    ready 127.0.0.1:17400
    "$work/relayd" --data-dir "$d/2" --listen 127.0.0.1:17410 --raft-listen 127.0.0.1:17411 --join 127.0.0.1:17400 --commit-timeout "$c" --log-level warn & p2=$!
    "$work/relayd" --data-dir "$d/3" --listen 127.0.0.1:17420 --raft-listen 127.0.0.1:17421 --join 127.0.0.1:17400 --commit-timeout "$c" --log-level warn & p3=$!
    ready 127.0.0.1:17410; ready 127.0.0.1:17420
    sleep 5 # let the joins settle
    a1=$(ticks $p1); a2=$(ticks $p2); a3=$(ticks $p3)
    sleep 10
    # ticks are 1/100 s, so ticks in 10 s are tenths of a percent of a core.
    printf 'commit_timeout=%s: %% of a core over 10 s: leader %s, followers %s %s\n' "$c" \
      "$(echo "scale=1; ($(ticks $p1)-$a1)/10" | bc)" "$(echo "scale=1; ($(ticks $p2)-$a2)/10" | bc)" "$(echo "scale=1; ($(ticks $p3)-$a3)/10" | bc)"
    kill $p1 $p2 $p3; wait $p1 $p2 $p3 2>/dev/null || true
  done
done
