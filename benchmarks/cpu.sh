#!/usr/bin/env bash
# CPU per resent row, per process: `sms-retry run` over DUE due rows against a stand-in (no
# latency), with each process's CPU read from /proc before and after: sms-retry, PostgreSQL (every
# server process, and the backends that ended during the run, through the postmaster's cutime),
# and the stand-in. Then the same create request from wrk, a lean C client, against the same
# stand-in: its CPU per request is the yardstick for sms-retry's.
#
#   make cpu              (DUE=10000 CONCURRENCY=32 BATCH=100 ROUNDS=3 STANDIN=lean|test LATENCY_MS=0 MAX_RUNTIME=600)
#
# With LATENCY_MS the stand-in answers after that long, and each round also prints the ratio
# to the ideal rows/s (concurrency / latency).
#
# STANDIN=lean (default) is benchmarks/Sources/lean-standin (one thread, poll); test is the
# tests' twilio-standin, which spends more CPU per request than sms-retry does.
#
# Called by .ci/with-postgres (PG* set, SMS_RETRY_PGDATA) with the release build folder as $1.
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
due=${DUE:-10000}
concurrency=${CONCURRENCY:-32}
batch=${BATCH:-100}
rounds=${ROUNDS:-3}
tick=$(getconf CLK_TCK)

# utime+stime (+cutime+cstime with "children") of a process, in clock ticks.
ticks() { awk -v c="${2:-}" '{ t = $14 + $15; if (c != "") t += $16 + $17; print t }' "/proc/$1/stat"; }
postmaster=$(head -n 1 "$SMS_RETRY_PGDATA/postmaster.pid")
pg_ticks() {
  local total; total=$(ticks "$postmaster" children)
  for pid in $(pgrep -P "$postmaster"); do total=$((total + $(ticks "$pid" 2>/dev/null || echo 0))); done
  echo "$total"
}

"$bin/sms-retry" migrate --create-table --log-level warning >/dev/null
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
url_file=$(mktemp)
latency=${LATENCY_MS:-0}
if [ "${STANDIN:-lean}" = lean ]; then "$bin/lean-standin" --latency-ms "$latency" > "$url_file" &
else "$bin/twilio-standin" --latency-ms "$latency" > "$url_file" & fi
standin=$!
trap 'kill $standin 2>/dev/null || true; rm -f "$url_file"' EXIT
for _ in $(seq 50); do [ -s "$url_file" ] && break; sleep 0.1; done
export TWILIO_API_BASE_URL=$(head -n 1 "$url_file")

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
figures=$(mktemp)
echo "== sms-retry run over $due due rows: concurrency $concurrency, batch $batch, stand-in latency $latency ms, $(nproc) cores; CPU per row in µs"
for round in $(seq "$rounds"); do
  psql -q -v ON_ERROR_STOP=1 -c "TRUNCATE sms_usage_logs" -c "
    INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                                error_message, sms_metadata, retry_count, max_retries, next_retry_at, created_at)
    SELECT g, '+1415' || lpad(g::text, 7, '0'), 'outbound', 20, 'Your code is ' || g, false, 'Twilio error 30003',
           jsonb_build_object('campaign', 'bench', 'retry', jsonb_build_object('error_code', '30003')), 0, 3,
           now() - interval '1 second', localtimestamp - interval '1 minute'
    FROM generate_series(1, $due) AS g" -c "VACUUM ANALYZE sms_usage_logs"
  pg0=$(pg_ticks); si0=$(ticks "$standin")
  start=$(date +%s%N)
  /usr/bin/time -o /tmp/sms-retry-cpu.time -f "%U %S %M" \
    "$bin/sms-retry" run --log-level warning --concurrency "$concurrency" --batch-size "$batch" --max-runtime "${MAX_RUNTIME:-600}" --max-age 60d >/dev/null || true
  wall=$(( $(date +%s%N) - start ))
  pg1=$(pg_ticks); si1=$(ticks "$standin")
  read -r user sys rss < /tmp/sms-retry-cpu.time
  sent=$(psql -Atc "SELECT count(*) FROM sms_usage_logs WHERE final_status = 'sent'")
  awk -v u="$user" -v s="$sys" -v pg=$((pg1 - pg0)) -v si=$((si1 - si0)) -v t="$tick" -v n="$sent" -v w="$wall" -v r="$rss" -v k="$round" -v lat="$latency" -v c="$concurrency" -v f="$figures" 'BEGIN {
    printf "round %d: %d sent in %.2f s (%.0f rows/s", k, n, w / 1e9, n / (w / 1e9)
    if (lat > 0) printf ", %.2f of the ideal %.0f/s", n / (w / 1e9) / (c / (lat / 1000)), c / (lat / 1000)
    printf "); sms-retry %.0f, PostgreSQL %.0f, stand-in %.0f; sms-retry peak RSS %d kB\n",
      (u + s) * 1e6 / n, pg / t * 1e6 / n, si / t * 1e6 / n, r
    printf "%.1f %.1f %.1f %.1f %d %.3f\n", n / (w / 1e9), (u + s) * 1e6 / n, pg / t * 1e6 / n, si / t * 1e6 / n, r,
      (lat > 0 ? n / (w / 1e9) / (c / (lat / 1000)) : 0) >> f }'
done
# One line of medians over the rounds, for bench.sh: FIGURES rows_per_s sms_retry_us postgres_us standin_us rss_kb ideal_ratio
echo "FIGURES $(for k in 1 2 3 4 5 6; do awk -v k="$k" '{ print $k }' "$figures" | median; done | tr '\n' ' ')"
rm -f "$figures"

[ "$latency" = 0 ] || exit 0   # wrk's figure is for the stand-in without latency
echo "== wrk (1 thread, $concurrency connections, 5 s) posting the same create to the same stand-in"
si0=$(ticks "$standin")
/usr/bin/time -o /tmp/wrk-cpu.time -f "%U %S" wrk -t1 -c"$concurrency" -d5s -s "$here/post.lua" \
  "$TWILIO_API_BASE_URL/2010-04-01/Accounts/$TWILIO_ACCOUNT_SID/Messages.json" > /tmp/wrk.out
si1=$(ticks "$standin")
requests=$(awk '/requests in/ { print $1 }' /tmp/wrk.out)
read -r user sys < /tmp/wrk-cpu.time
awk -v u="$user" -v s="$sys" -v n="$requests" -v si=$((si1 - si0)) -v t="$tick" 'BEGIN {
  printf "wrk: %d requests in 5 s (%.0f/s); wrk %.1f µs per request, stand-in %.1f\n", n, n / 5, (u + s) * 1e6 / n, si / t * 1e6 / n
  printf "WRK %.1f %.1f %.1f\n", n / 5, (u + s) * 1e6 / n, si / t * 1e6 / n }'
