#!/usr/bin/env bash
# The core figures: the claim query's plan on a 1M-row table, `sms-retry run` throughput over
# 10k due rows against the local stand-in, and each analytics view's time after that run.
#
#   make measure                      (CONCURRENCY=16 BATCH=100 ROWS=1000000 DUE=10000)
#
# Called by .ci/with-postgres (PG* set) with the release build folder as $1.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
rows=${ROWS:-1000000}
due=${DUE:-10000}
concurrency=${CONCURRENCY:-16}
batch=${BATCH:-100}

"$bin/sms-retry" migrate --create-table --log-level warning >/dev/null
echo "== seeding $rows rows ($due due for a retry)"
psql -q -v ON_ERROR_STOP=1 -v rows="$rows" -v fail_permille=30 -f "$here/seed.sql"
psql -q -v ON_ERROR_STOP=1 -v due="$due" -f "$here/due.sql"
# Opt-out history for half the due numbers (STOP, then START an hour ago: the lookup finds events
# and still lets the row be sent) so the claim's per-row opt-out lookup does real work.
psql -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, created_at)
  SELECT 1, d.phone_number, 'inbound', length(v.word), v.word, true, localtimestamp - interval '2 hours' + v.k * interval '1 minute'
  FROM (SELECT DISTINCT phone_number FROM sms_usage_logs WHERE success = false AND next_retry_at IS NOT NULL LIMIT $due / 2) AS d,
       (VALUES (1, 'STOP'), (2, 'start ')) AS v(k, word)"
psql -q -c "VACUUM ANALYZE sms_usage_logs"

echo "== EXPLAIN ANALYZE of the claim (batch $batch), rolled back: the runtime statement"
"$bin/sms-retry-bench" claim --explain --limit "$batch"

export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
url_file=$(mktemp)
"$bin/lean-standin" > "$url_file" &
standin=$!
trap 'kill $standin 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
export TWILIO_API_BASE_URL=$(head -n 1 "$url_file")

echo "== sms-retry run over $due due rows: concurrency $concurrency, batch $batch, $(nproc) cores"
/usr/bin/time -f "sms-retry: wall %e s, user %U s, sys %S s, peak RSS %M kB" \
  "$bin/sms-retry" run --log-level warning --concurrency "$concurrency" --batch-size "$batch" --max-runtime 600 --max-age 60d || true
echo "stand-in CPU: $(ps -o cputime= -p $standin)"
psql -Atc "SELECT 'rows sent: ' || count(*) FROM sms_usage_logs WHERE final_status = 'sent' AND retry_count = 1"

echo "== analytics views after the run ($rows rows; EXPLAIN ANALYZE execution time, best of 3)"
# Opt-out history for half the due numbers (STOP, then START an hour ago: the lookup finds events
# and still lets the row be sent) so the claim's per-row opt-out lookup does real work.
psql -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, created_at)
  SELECT 1, d.phone_number, 'inbound', length(v.word), v.word, true, localtimestamp - interval '2 hours' + v.k * interval '1 minute'
  FROM (SELECT DISTINCT phone_number FROM sms_usage_logs WHERE success = false AND next_retry_at IS NOT NULL LIMIT $due / 2) AS d,
       (VALUES (1, 'STOP'), (2, 'start ')) AS v(k, word)"
psql -q -c "VACUUM ANALYZE sms_usage_logs"
view_times | while read -r view ms; do printf '%-24s %8s ms\n' "$view" "$ms"; done
