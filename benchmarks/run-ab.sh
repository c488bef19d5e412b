#!/usr/bin/env bash
# Two builds of sms-retry side by side: `run` over the same 20,000 due rows (a 200k-row table, a
# fresh copy of it for every run, the lean stand-in), in the order A B B A three times, so drift
# in the machine's load falls on both alike. Prints one line per run: sent, seconds, the
# process's CPU (user+system) and peak memory.
#
#   .ci/with-postgres DIR benchmarks/run-ab.sh BEFORE_BIN_DIR AFTER_BIN_DIR
#
# Each BIN_DIR is a `swift build -c release --show-bin-path` (sms-retry and lean-standin).
set -euo pipefail
before=$1 after=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
psql -q -d postgres -c "CREATE DATABASE base"
PGDATABASE=base "$after/sms-retry" migrate --create-table --log-level warning >/dev/null
PGDATABASE=base psql -q -v ON_ERROR_STOP=1 -v rows=200000 -v fail_permille=30 -f "$here/seed.sql"
PGDATABASE=base psql -q -v ON_ERROR_STOP=1 -v due=20000 -f "$here/due.sql"
PGDATABASE=base psql -q -c "VACUUM ANALYZE sms_usage_logs"
"$after/lean-standin" > "$work/url" 2>/dev/null < /dev/null &
sp=$!
trap 'kill $sp 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/url" ] && break; sleep 0.1; done
export TWILIO_API_BASE_URL=$(head -n 1 "$work/url")
n=0
for rep in 1 2 3; do
  for which in before after after before; do
    n=$((n+1)); db=r$n
    psql -q -d postgres -c "CREATE DATABASE $db TEMPLATE base"
    bin=$before; [ $which = after ] && bin=$after
    out=$( { /usr/bin/time -f "cpu=%U+%S maxrss=%MkB" env PGDATABASE=$db "$bin/sms-retry" run --log-level warning --concurrency 16 --batch-size 100 --max-runtime 600 --max-age 30d; } 2>&1 )
    echo "$which $(echo "$out" | tr '\n' ' ' | grep -o 'sent=[0-9]*\|seconds=[0-9.]*\|cpu=[0-9.+]*\|maxrss=[0-9]*kB' | tr '\n' ' ')"
    psql -q -d postgres -c "DROP DATABASE $db"
  done
done
