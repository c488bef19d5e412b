#!/usr/bin/env bash
# The reconcile rate (issue 23): one `sms-retry reconcile` over N router sends whose status
# callbacks were lost (success, a SID, no final status, 30 minutes old), against the lean
# stand-in, which says delivered for each. Prints a markdown section: messages confirmed per
# second, requests, by the list and by SID, without and with 150 ms latency.
# Runs under .ci/with-postgres (PG* set); $1 = the build folder (sms-retry, lean-standin).
#   .ci/with-postgres /tmp/rr-pg benchmarks/reconcile-rate.sh "$(swift build -c release --show-bin-path)"
#   N=20000 CONCURRENCY=8 (the default), N150=2000 (with latency)
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
n=${N:-20000}
n150=${N150:-2000}
concurrency=${CONCURRENCY:-8}
tmp=$(mktemp -d)
standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006

standin_start() {   # latency_ms messages
  [ -n "$standin" ] && { kill "$standin" 2>/dev/null || true; wait "$standin" 2>/dev/null || true; }
  : > "$tmp/url"
  "$bin/lean-standin" --latency-ms "$1" --messages "$2" > "$tmp/url" 2>/dev/null < /dev/null &
  standin=$!
  for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
  export TWILIO_API_BASE_URL=$(head -n 1 "$tmp/url")
}
fresh() {           # rows: a migrated table with `rows` router sends awaiting their final status
  psql -q -d postgres -c "DROP DATABASE IF EXISTS bench_reconcile" -c "CREATE DATABASE bench_reconcile"
  export PGDATABASE=bench_reconcile
  psql -q -v ON_ERROR_STOP=1 -f "$here/../migrations/001_baseline.up.sql"
  "$bin/sms-retry" migrate --dir "$here/../migrations" --log-level warning >&2
  psql -q -v ON_ERROR_STOP=1 -c "
    INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                                sms_metadata, twilio_message_sid, created_at)
    SELECT g, '+1415' || lpad(g::text, 7, '0'), 'outbound', 20, 'Your code is ' || g, true, '{}',
           'SM' || lpad(to_hex(g), 32, '0'), sms_retry_router_time(now()) - interval '30 minutes'
    FROM generate_series(1, $1) AS g" -c "VACUUM ANALYZE sms_usage_logs"
}
measure() {         # rows latency_ms way → sets confirmed, requests, seconds (no subshell: the stand-in stays known)
  fresh "$1"
  standin_start "$2" "$1"
  local start end line
  start=$(date +%s.%N)
  line=$("$bin/sms-retry" reconcile --log-level warning --concurrency "$concurrency" --sweep-by "$3" < /dev/null)
  end=$(date +%s.%N)
  echo "$3, $1 rows, $2 ms: $line" >&2
  read -r confirmed requests seconds <<< "$(echo "$line" | awk -v s="$(echo "$end - $start" | bc)" \
    '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } } END { printf "%d %d %.2f\n", f["confirmed"], f["requests"], s }')"
}

echo "## Reconcile rate: router sends with lost callbacks, one \`sms-retry reconcile\` (concurrency $concurrency, lean stand-in)"
echo
echo "| rows | latency | way | confirmed | requests | seconds | messages/s | goal |"
echo "|---|---|---|---|---|---|---|---|"
for way in list sid; do
  measure "$n" 0 "$way"
  rate=$(echo "$confirmed / $seconds" | bc -l)
  printf "| %d | 0 ms | %s | %d | %d | %.2f | %.0f | ≥ 1,000 |\n" "$n" "$way" "$confirmed" "$requests" "$seconds" "$rate"
done
measure "$n150" 150 sid
rate=$(echo "$confirmed / $seconds" | bc -l)
ideal=$(echo "$concurrency / 0.150" | bc -l)
printf "| %d | 150 ms | sid | %d | %d | %.2f | %.1f (%.2f of %.1f) | ≥ 0.9 of concurrency / latency |\n" \
  "$n150" "$confirmed" "$requests" "$seconds" "$rate" "$(echo "$rate / $ideal" | bc -l)" "$ideal"
echo
echo "(seconds: the whole command, connecting and the walk down the table included; \`auto\` chooses the list for these: pages of 1000 ask less than one GET per message.)"
