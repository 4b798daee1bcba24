#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a while each.
#   scripts/fuzz.sh            # 30 s per target
#   FUZZTIME=10m scripts/fuzz.sh
# Seed corpora (f.Add and testdata/fuzz) also run as ordinary tests in
# `go test ./...`; this script explores beyond them. Findings are written by
# go test to the package's testdata/fuzz/<Target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
status=0
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			status=1
		fi
	done
done
exit $status
