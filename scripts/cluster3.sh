#!/usr/bin/env bash
# cluster3.sh: a three-node Liaison cluster on one machine, for trying things
# out and for tests. Not for production (see docs/operations.md).
#
#   scripts/cluster3.sh [start] [--tls]   start n1, n2, n3 and wait for a leader
#   scripts/cluster3.sh status            process state and `liaison admin status`
#   scripts/cluster3.sh restart NODE      restart n1, n2 or n3 and wait until it
#                                         has caught up (one step of a rolling restart)
#   scripts/cluster3.sh stop              stop the nodes (SIGTERM, graceful)
#
# Nodes: n1 on 127.0.0.1, n2 on 127.0.0.2, n3 on 127.0.0.3; clients on port
# 7400, Raft on port 7401 (Linux routes all of 127.0.0.0/8 to loopback).
#
# Environment:
#   LIAISON_CLUSTER_DIR  where data, logs, pid files and certificates go
#                        (default ./liaison-cluster)
#   RELAYD, LIAISON      prebuilt binaries; otherwise both are built with
#                        `go build` into $LIAISON_CLUSTER_DIR/bin
#   CLUSTER_TIMEOUT      seconds to wait for the cluster (default 60)
#   STOP_TIMEOUT         seconds `stop` waits for a node before SIGKILL (default 30)
#
# --tls creates a cluster CA and certificates in $LIAISON_CLUSTER_DIR/pki with
# `liaison admin ca` and runs the nodes with mutual TLS between them and TLS
# for clients (--client-tls). A cluster directory remembers its mode.
set -euo pipefail

readonly PROG=${0##*/}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
readonly SCRIPT_DIR REPO_DIR
readonly NODES=(n1 n2 n3)
readonly CLIENT_PORT=7400
readonly RAFT_PORT=7401
readonly TIMEOUT=${CLUSTER_TIMEOUT:-60}

die() { echo "$PROG: error: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }

usage() {
	awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"
}

ip_of() { echo "127.0.0.${1#n}"; }

case ${1:-} in -h | --help | help) usage; exit 0 ;; esac

# Cluster directory as an absolute path.
DIR=${LIAISON_CLUSTER_DIR:-./liaison-cluster}
if [[ ! -d $DIR ]]; then
	case ${1:-start} in
	stop | status | restart) die "no cluster directory $DIR (set LIAISON_CLUSTER_DIR)" ;;
	esac
	mkdir -p "$DIR" || die "cannot create $DIR"
fi
DIR=$(cd "$DIR" && pwd)
readonly DIR
readonly PKI="$DIR/pki"
readonly MODE_FILE="$DIR/mode"

relay_list() {
	local out="" n
	for n in "${NODES[@]}"; do out+="${out:+,}$(ip_of "$n"):$CLIENT_PORT"; done
	echo "$out"
}

pid_file() { echo "$DIR/$1/relayd.pid"; }
log_file() { echo "$DIR/$1/relayd.log"; }

# pid_of NODE prints the pid of NODE's relayd if it is running.
pid_of() {
	local f pid
	f=$(pid_file "$1")
	[[ -f $f ]] || return 1
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid: it must still be a relayd.
	case "$(ps -p "$pid" -o comm= 2>/dev/null)" in
	*relayd*) echo "$pid" ;;
	*) return 1 ;;
	esac
}

mode() { if [[ -f $MODE_FILE ]]; then cat "$MODE_FILE"; else echo plain; fi; }

# curl_node NODE PATH: GET a node's client endpoint.
curl_node() {
	local ip
	ip=$(ip_of "$1")
	if [[ $(mode) == tls ]]; then
		curl -fsS --max-time 3 --cacert "$PKI/ca.crt" "https://$ip:$CLIENT_PORT$2"
	else
		curl -fsS --max-time 3 "http://$ip:$CLIENT_PORT$2"
	fi
}

# liaison_admin ARGS...: `liaison admin` against all three nodes.
liaison_admin() {
	# Explicit flags, so that LIAISON_TLS_* in the caller's environment
	# (from another cluster's env file) cannot interfere.
	local tls=(--tls-ca "" --tls-cert "" --tls-key "")
	if [[ $(mode) == tls ]]; then
		tls=(--tls-ca "$PKI/ca.crt" --tls-cert "$PKI/ops.crt" --tls-key "$PKI/ops.key")
	fi
	"$LIAISON_BIN" --relay "$(relay_list)" "${tls[@]}" admin "$@"
}

# port_busy IP PORT: something listens there.
port_busy() {
	if command -v ss >/dev/null 2>&1; then
		# The address itself, or a wildcard listener on the same port.
		ss -Hltn 2>/dev/null | awk -v a="$1:$2" -v p=":$2" '
			$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p {found = 1}
			END {exit !found}'
	else
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
	fi
}

tail_log() {
	local f
	f=$(log_file "$1")
	if [[ -f $f ]]; then
		echo "---- last lines of $f ----" >&2
		tail -n 15 "$f" >&2
		echo "----" >&2
	fi
}

# wait_for DESCRIPTION CHECK-FUNCTION [NODES WHOSE PROCESS MUST STAY UP...]
wait_for() {
	local what=$1 check=$2 deadline n
	shift 2
	deadline=$(($(date +%s) + TIMEOUT))
	until "$check" >/dev/null 2>&1; do
		for n in "$@"; do
			if ! pid_of "$n" >/dev/null; then
				tail_log "$n"
				die "$n exited while waiting for $what (log: $(log_file "$n"))"
			fi
		done
		if (($(date +%s) >= deadline)); then
			for n in "$@"; do tail_log "$n"; done
			die "timed out after ${TIMEOUT}s waiting for $what"
		fi
		sleep 0.2
	done
}

ensure_binaries() {
	if [[ -n ${RELAYD:-} ]]; then
		[[ -x $RELAYD ]] || die "RELAYD=$RELAYD is not an executable file"
		RELAYD_BIN=$RELAYD
	fi
	if [[ -n ${LIAISON:-} ]]; then
		[[ -x $LIAISON ]] || die "LIAISON=$LIAISON is not an executable file"
		LIAISON_BIN=$LIAISON
	fi
	if [[ -z ${RELAYD_BIN:-} || -z ${LIAISON_BIN:-} ]]; then
		command -v go >/dev/null 2>&1 || die "go not found: install Go or set RELAYD and LIAISON to prebuilt binaries"
		[[ -f $REPO_DIR/go.mod ]] || die "$REPO_DIR is not the Liaison source tree; set RELAYD and LIAISON"
		mkdir -p "$DIR/bin"
		if [[ -z ${RELAYD_BIN:-} ]]; then
			note "building relayd into $DIR/bin"
			(cd "$REPO_DIR" && go build -o "$DIR/bin/relayd" ./cmd/relayd) || die "go build ./cmd/relayd failed"
			RELAYD_BIN=$DIR/bin/relayd
		fi
		if [[ -z ${LIAISON_BIN:-} ]]; then
			note "building liaison into $DIR/bin"
			(cd "$REPO_DIR" && go build -o "$DIR/bin/liaison" ./cmd/liaison) || die "go build ./cmd/liaison failed"
			LIAISON_BIN=$DIR/bin/liaison
		fi
	fi
}

# For stop and status: use a binary we can find, build nothing.
find_liaison() {
	if [[ -n ${LIAISON:-} ]]; then LIAISON_BIN=$LIAISON
	elif [[ -x $DIR/bin/liaison ]]; then LIAISON_BIN=$DIR/bin/liaison
	elif command -v liaison >/dev/null 2>&1; then LIAISON_BIN=$(command -v liaison)
	else LIAISON_BIN=""
	fi
}

make_pki() {
	if [[ ! -f $PKI/ca.crt ]]; then
		"$LIAISON_BIN" admin ca init "$PKI" >/dev/null
	fi
	local n
	for n in "${NODES[@]}"; do
		[[ -f $PKI/$n.crt ]] || "$LIAISON_BIN" admin ca node "$PKI" "$n" --host "$(ip_of "$n")" >/dev/null
	done
	[[ -f $PKI/ops.crt ]] || "$LIAISON_BIN" admin ca admin "$PKI" ops >/dev/null
	note "certificates in $PKI (CA key: $PKI/ca.key)"
}

start_node() {
	local n=$1 ip args
	ip=$(ip_of "$n")
	mkdir -p "$DIR/$n"
	args=(--node-id "$n" --data-dir "$DIR/$n/data"
		--listen "$ip:$CLIENT_PORT" --raft-listen "$ip:$RAFT_PORT")
	if [[ $n != n1 ]]; then
		args+=(--join "$(ip_of n1):$CLIENT_PORT")
	fi
	if [[ $(mode) == tls ]]; then
		args+=(--tls-ca "$PKI/ca.crt" --tls-cert "$PKI/$n.crt" --tls-key "$PKI/$n.key" --client-tls)
	fi
	# A session of its own: the node outlives this script and its terminal.
	# RELAYD_* settings in the caller's environment (relayd reads them) are
	# dropped: the nodes get exactly the flags above.
	(
		for v in $(compgen -e); do
			if [[ $v == RELAYD_* ]]; then unset "$v"; fi
		done
		if command -v setsid >/dev/null 2>&1; then
			exec setsid "$RELAYD_BIN" "${args[@]}"
		else
			exec nohup "$RELAYD_BIN" "${args[@]}"
		fi
	) >>"$(log_file "$n")" 2>&1 </dev/null &
	echo $! >"$(pid_file "$n")"
	STARTED+=("$n")
	note "started $n (pid $!, clients $ip:$CLIENT_PORT, raft $ip:$RAFT_PORT, log $(log_file "$n"))"
}

# If start fails half way, stop what this run started.
STARTED=()
cleanup_failed_start() {
	local n pid
	for n in "${STARTED[@]}"; do
		if pid=$(pid_of "$n"); then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for n in "${STARTED[@]}"; do
		for _ in $(seq 1 100); do pid_of "$n" >/dev/null || break; sleep 0.1; done
		if pid=$(pid_of "$n"); then kill -KILL "$pid" 2>/dev/null || true; fi
		rm -f "$(pid_file "$n")"
	done
	((${#STARTED[@]} == 0)) || note "stopped the nodes this run had started"
}

n1_ready() { curl_node n1 /readyz; }
n1_alive() { curl_node n1 /healthz; }
all_alive() {
	local n
	for n in "${NODES[@]}"; do curl_node "$n" /healthz || return 1; done
}
# One leader, two followers, all applied up to the leader's commit index.
cluster_formed() {
	local out
	out=$(liaison_admin status 2>/dev/null) || return 1
	echo "$out" | awk 'NR > 1 && $3 == "Leader" {l++} NR > 1 && $3 == "Follower" {f++}
		NR > 1 && $8 != "0" {lag++} END {exit !(l == 1 && f == 2 && lag == 0)}'
}

cmd_start() {
	local want=plain arg n
	for arg in "$@"; do
		case $arg in
		--tls) want=tls ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown argument $arg (try $PROG --help)" ;;
		esac
	done
	command -v curl >/dev/null 2>&1 || die "curl is required"

	for n in "${NODES[@]}"; do
		if pid_of "$n" >/dev/null; then
			die "$n is already running (pid $(pid_of "$n")); use '$PROG status' or '$PROG stop'"
		fi
	done
	local fresh=1
	[[ -d $DIR/n1/data ]] && fresh=0
	if ((fresh)); then
		echo "$want" >"$MODE_FILE"
	elif [[ $(mode) != "$want" ]]; then
		if [[ $want == tls ]]; then
			die "$DIR holds a cluster made without --tls; use another LIAISON_CLUSTER_DIR"
		fi
		note "$DIR holds a --tls cluster; starting it with TLS"
	fi

	for n in "${NODES[@]}"; do
		local ip
		ip=$(ip_of "$n")
		for port in $CLIENT_PORT $RAFT_PORT; do
			if port_busy "$ip" "$port"; then
				die "$ip:$port is in use (see: ss -ltnp 'src $ip:$port'); stop whatever listens there first"
			fi
		done
	done

	ensure_binaries
	[[ $(mode) == tls ]] && make_pki

	trap cleanup_failed_start EXIT
	start_node n1
	if ((fresh)); then
		# A new n1 bootstraps a one-node cluster; the others join it.
		wait_for "n1 to become ready" n1_ready n1
	else
		wait_for "n1 to answer /healthz" n1_alive n1
	fi
	start_node n2
	start_node n3
	wait_for "all nodes to answer /healthz" all_alive "${NODES[@]}"
	wait_for "one leader and two caught-up followers" cluster_formed "${NODES[@]}"
	trap - EXIT

	write_env
	liaison_admin status
	local relays
	relays=$(relay_list)
	cat <<EOF

Cluster is up ($(mode)); data, logs and pid files are in $DIR.

Use it:
  . $DIR/env        # PATH, LIAISON_RELAY, LIAISON_HOME$([[ $(mode) == tls ]] && echo ", LIAISON_TLS_CA/CERT/KEY")
  liaison admin status
  liaison id new --name Alice
  liaison op create demo
  liaison send demo "hello"
  liaison read demo --follow
  curl $( [[ $(mode) == tls ]] && echo "--cacert $PKI/ca.crt https" || echo http)://127.0.0.2:$CLIENT_PORT/readyz

Relays: $relays
Status:  LIAISON_CLUSTER_DIR=$DIR $0 status
Restart: LIAISON_CLUSTER_DIR=$DIR $0 restart n2
Stop:    LIAISON_CLUSTER_DIR=$DIR $0 stop
EOF
}

write_env() {
	{
		echo "# source this file: . $DIR/env"
		echo "export LIAISON_CLUSTER_DIR=$DIR"
		echo "export LIAISON_RELAY=$(relay_list)"
		echo "export PATH=\"$(dirname "$LIAISON_BIN"):\$PATH\""
		echo "export LIAISON_HOME=$DIR/home   # a throwaway identity for this cluster"
		if [[ $(mode) == tls ]]; then
			echo "export LIAISON_TLS_CA=$PKI/ca.crt"
			echo "export LIAISON_TLS_CERT=$PKI/ops.crt"
			echo "export LIAISON_TLS_KEY=$PKI/ops.key"
		fi
	} >"$DIR/env"
}

cmd_stop() {
	local n pid any=0 stop_timeout=${STOP_TIMEOUT:-30}
	for n in "${NODES[@]}"; do
		if pid=$(pid_of "$n"); then
			any=1
			note "stopping $n (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for n in "${NODES[@]}"; do
		local deadline=$(($(date +%s) + stop_timeout))
		while pid=$(pid_of "$n"); do
			if (($(date +%s) >= deadline)); then
				note "$n did not stop within ${stop_timeout}s; killing it (acknowledged messages are on disk)"
				kill -KILL "$pid" 2>/dev/null || true
				sleep 0.5
				break
			fi
			sleep 0.2
		done
		rm -f "$(pid_file "$n")"
	done
	if ((any)); then note "stopped; data kept in $DIR (start again with: LIAISON_CLUSTER_DIR=$DIR $0)"; else note "no node was running in $DIR"; fi
}

# restart NODE: stop one node gracefully (a leader hands over leadership),
# start it again with the same flags, wait until it has caught up. Run it
# for n1, n2, n3 in turn for a rolling restart (new binary, new certificates).
cmd_restart() {
	local n=${1:-} pid
	case $n in n1 | n2 | n3) ;; *) die "usage: $PROG restart n1|n2|n3" ;; esac
	[[ -d $DIR/$n/data ]] || die "no data for $n in $DIR; start the cluster first"
	command -v curl >/dev/null 2>&1 || die "curl is required"
	ensure_binaries
	if pid=$(pid_of "$n"); then
		note "stopping $n (pid $pid)"
		kill -TERM "$pid"
		local deadline=$(($(date +%s) + ${STOP_TIMEOUT:-30}))
		while pid_of "$n" >/dev/null; do
			(($(date +%s) < deadline)) || die "$n did not stop within ${STOP_TIMEOUT:-30}s"
			sleep 0.2
		done
	fi
	rm -f "$(pid_file "$n")"
	start_node "$n"
	wait_for "$n to answer /healthz" "node_alive_$n" "$n"
	wait_for "one leader and two caught-up followers" cluster_formed "${NODES[@]}"
	liaison_admin status
}
node_alive_n1() { curl_node n1 /healthz; }
node_alive_n2() { curl_node n2 /healthz; }
node_alive_n3() { curl_node n3 /healthz; }

cmd_status() {
	local n pid running=0
	for n in "${NODES[@]}"; do
		if pid=$(pid_of "$n"); then
			running=$((running + 1))
			echo "$n: running, pid $pid, clients $(ip_of "$n"):$CLIENT_PORT, log $(log_file "$n")"
		else
			echo "$n: not running"
		fi
	done
	((running > 0)) || return 1
	find_liaison
	if [[ -z $LIAISON_BIN ]]; then
		note "no liaison binary found (set LIAISON) to show the Raft status"
		return 0
	fi
	echo
	liaison_admin status
}

case ${1:-start} in
start) shift || true; cmd_start "$@" ;;
--tls) cmd_start "$@" ;;
stop) cmd_stop ;;
restart) shift; cmd_restart "$@" ;;
status) cmd_status ;;
-h | --help | help) usage ;;
*) die "unknown command ${1} (start [--tls], status, restart NODE, stop)" ;;
esac
