#!/usr/bin/env bash
# What the sweep's walk down the primary key costs as the table grows (docs/ARCHITECTURE.md,
# "The sweep"): a table of ROWS router rows over 30 days (benchmarks/seed.sql), every outbound
# row of the last day with a SID and confirmed by its callback but 1 % of them; then one
# `sms-retry reconcile` (by SID, the lean stand-in) and sms_retry_unconfirmed(), as health reads it.
# Runs under .ci/with-postgres (PG* set); $1 = the build folder.
#   .ci/with-postgres /tmp/sw-pg benchmarks/sweep-walk.sh "$(swift build -c release --show-bin-path)"
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
rows=${ROWS:-3000000}
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
tmp=$(mktemp -d); standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
psql -q -d postgres -c "DROP DATABASE IF EXISTS bench_sweep" -c "CREATE DATABASE bench_sweep"
export PGDATABASE=bench_sweep
psql -q -v ON_ERROR_STOP=1 -f "$here/../migrations/001_baseline.up.sql"
psql -q -v ON_ERROR_STOP=1 -v rows="$rows" -v fail_permille=30 -f "$here/seed.sql"
"$bin/sms-retry" migrate --dir "$here/../migrations" --log-level warning > /dev/null 2>&1
psql -q -v ON_ERROR_STOP=1 -c "
  UPDATE sms_usage_logs SET twilio_message_sid = 'SM' || lpad(to_hex(id), 32, '0'),
         final_status = CASE WHEN id % 100 = 0 THEN 'unknown' ELSE 'delivered' END
  WHERE success AND message_direction = 'outbound' AND created_at >= sms_retry_router_time(now()) - interval '24 hours'" \
  -c "VACUUM ANALYZE sms_usage_logs"
window=$(psql -AtX -c "SELECT count(*) FROM sms_usage_logs WHERE created_at >= sms_retry_router_time(now()) - interval '24 hours'")
waiting=$(psql -AtX -c "SELECT count(*) FROM sms_usage_logs WHERE final_status = 'unknown' AND twilio_message_sid IS NOT NULL AND created_at < sms_retry_router_time(now()) - interval '15 minutes'")
"$bin/lean-standin" --messages 0 > "$tmp/url" 2>/dev/null < /dev/null &
standin=$!
for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
export TWILIO_API_BASE_URL=$(head -n 1 "$tmp/url")
best=""
for _ in 1 2 3; do
  psql -q -c "UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), final_status = 'unknown', delivery_confirmed_at = NULL
              WHERE final_status = 'delivered' AND id % 100 = 0" > /dev/null
  start=$(date +%s.%N)
  line=$("$bin/sms-retry" reconcile --log-level warning --sweep-by sid < /dev/null)
  s=$(echo "$(date +%s.%N) - $start" | bc)
  best=$(printf "%s\n%s\n" "$best" "$s" | grep . | sort -g | head -1)
done
health=$(psql -AtX -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT sms_retry_unconfirmed(interval '1 hour', interval '24 hours')" \
         | grep -o '"Execution Time": [0-9.]*' | grep -o '[0-9.]*$')
view=$(for _ in 1 2 3; do psql -AtX -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT * FROM sms_retry_health" \
       | grep -o '"Execution Time": [0-9.]*' | grep -o '[0-9.]*$'; done | sort -g | head -1)
echo "| table rows | rows of the last 24 h | unconfirmed swept | reconcile (best of 3, whole command) | sms_retry_unconfirmed over 24 h | sms_retry_health (6 h, best of 3) |"
echo "|---|---|---|---|---|---|"
echo "| $rows | $window | $waiting ($line) | $(printf %.2f "$best") s | $health ms | $view ms |"
