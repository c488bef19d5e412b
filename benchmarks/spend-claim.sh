#!/usr/bin/env bash
# What the spend guard's fleet-wide limits cost a run (issue 26): with `max_resends_per_day` or
# `max_resends_per_prefix_per_hour` set, each claim is one transaction under an advisory lock that
# first counts the fleet's resends of the day and the last hour from the table (Queries.spendSoFar:
# the resent rows of the window and their history), so claims are serialised and each pays that
# read. This times `sms-retry run` over the same due rows on a table with many recent resends,
# without limits and with limits set so high that they hold nothing: the difference is the count
# and the lock, not fewer sends. Prints a markdown section and FIGURE lines.
# Runs under .ci/with-postgres (PG* set); $1 = the build folder (sms-retry, lean-standin).
#   .ci/with-postgres /tmp/sc-pg benchmarks/spend-claim.sh "$(swift build -c release --show-bin-path)"
#   RESENT=100000 (resent rows over the last DAYS=3 days), DUE=10000, BATCH=100, CONCURRENCY=16, REPS=1;
#   the runs' --max-age is DAYS, so every resent row is in the window a count reads (max age + 1 h).
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
resent=${RESENT:-100000}
days=${DAYS:-3}
due=${DUE:-10000}
batch=${BATCH:-100}
concurrency=${CONCURRENCY:-16}
reps=${REPS:-1}
tmp=$(mktemp -d)
standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
say() { echo "== $*" >&2; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

standin_start() {
  [ -n "$standin" ] && { kill "$standin" 2>/dev/null || true; wait "$standin" 2>/dev/null || true; }
  : > "$tmp/url"
  "$bin/lean-standin" > "$tmp/url" 2>/dev/null < /dev/null &
  standin=$!
  for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
  export TWILIO_API_BASE_URL=$(head -n 1 "$tmp/url")
}

# The table: $resent outbound rows resent once over the last $days days (as a run leaves them:
# retry_count 1, a `sent` history entry, `updated_at` the record's time, `sms_retry.spend` with country,
# range and cost), in
# 1000 ranges, and $due failures due now (user_id -1), in 1000 other ranges.
say "seeding $resent resent rows over $days days and $due due rows"
psql -q -d postgres -c "DROP DATABASE IF EXISTS bench_spend" -c "CREATE DATABASE bench_spend"
export PGDATABASE=bench_spend
psql -q -v ON_ERROR_STOP=1 -f "$here/../migrations/001_baseline.up.sql"
"$bin/sms-retry" migrate --dir "$here/../migrations" --log-level warning >&2
psql -q -v ON_ERROR_STOP=1 -c "
  INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success,
                              sms_metadata, twilio_message_sid, retry_count, max_retries, final_status, sms_retry, created_at)
  SELECT g % 5000, p.phone, 'outbound', 20, 'Your code is ' || g, true, '{}', 'SM' || lpad(to_hex(g), 32, '0'), 1, 3, 'sent',
         jsonb_build_object('rev', 1, 'updated_at', (c.at + interval '5 minutes')::timestamptz, 'spend', jsonb_build_object('country', 'US', 'range', '+1 ' || substr(p.phone, 3, 6), 'cost', 0.0083),
                            'history', jsonb_build_array(jsonb_build_object('at', to_char((c.at + interval '5 minutes')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'attempt', 1, 'outcome', 'sent',
                                                                            'sid', 'SM' || lpad(to_hex(g), 32, '0')))),
         c.at
  FROM generate_series(1, $resent) AS g,
       LATERAL (SELECT '+1415' || lpad((g % 1000)::text, 3, '0') || lpad((g / 1000)::text, 4, '0') AS phone) AS p,
       LATERAL (SELECT sms_retry_router_time(now()) - interval '10 minutes' - (g::float8 / $resent) * interval '$days days' AS at) AS c" \
  -c "
  INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, error_message,
                              sms_metadata, created_at)
  SELECT -1, '+1628' || lpad((g % 1000)::text, 3, '0') || lpad((g / 1000)::text, 4, '0'), 'outbound', 20, 'Your code is ' || g, false,
         'Twilio 30003', '{}', sms_retry_router_time(now()) - interval '10 minutes'
  FROM generate_series(1, $due) AS g"
set_due() {   # the due rows failed and due now again, as the router reported them
  psql -q -v ON_ERROR_STOP=1 -c "
    UPDATE sms_usage_logs
    SET success = false, retry_count = 0, max_retries = 3, final_status = 'unknown', twilio_message_sid = NULL,
        next_retry_at = now() - interval '1 minute',
        sms_retry = jsonb_build_object('error_code', 30003, 'strategy', 'linear', 'rev', coalesce((sms_retry ->> 'rev')::bigint, 0) + 1)
    WHERE user_id = -1" -c "VACUUM ANALYZE sms_usage_logs"
}
# The rows a count reads before the runs (the resent ones; each run adds its own $due).
counted=$(psql -AtX -c "SELECT count(*) FROM sms_usage_logs WHERE (success = false OR retry_count > 0) AND (retry_count > 0 OR sms_retry ? 'spend')")
echo '{}' > "$tmp/none.json"
echo '{ "max_resends_per_day": 100000000, "max_resends_per_prefix_per_hour": 1000000 }' > "$tmp/limits.json"

run_once() {  # policy file → "rows/s seconds sent held"
  local line
  set_due
  standin_start
  line=$("$bin/sms-retry" run --log-level warning --policy "$1" --concurrency "$concurrency" --batch-size "$batch" \
           --max-age "${days}d" --max-runtime 3600 || true)
  # run_once runs in a subshell (read < <(…)): its stand-in is stopped here, not by the EXIT trap.
  kill "$standin" 2>/dev/null || true; wait "$standin" 2>/dev/null || true; standin=""
  echo "$line" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
                      END { printf "%.1f %s %d %d\n", f["sent"] / f["seconds"], f["seconds"], f["sent"], f["budget_held"] + f["prefix_held"] }'
}

declare -A rate secs sent held
for mode in none limits; do
  rates=(); times=()
  for rep in $(seq "$reps"); do
    say "run over $due due rows, $mode, rep $rep"
    read -r r s n h < <(run_once "$tmp/$mode.json")
    rates+=("$r"); times+=("$s"); sent[$mode]=$n; held[$mode]=$h
  done
  rate[$mode]=$(printf '%s\n' "${rates[@]}" | median); secs[$mode]=$(printf '%s\n' "${times[@]}" | median)
done
claims=$(( (due + batch - 1) / batch ))
per_claim=$(awk -v a="${secs[limits]}" -v b="${secs[none]}" -v c="$claims" 'BEGIN { printf "%.1f", (a - b) * 1000 / c }')
ratio=$(awk -v a="${rate[limits]}" -v b="${rate[none]}" 'BEGIN { printf "%.2f", a / b }')

echo "FIGURE spendClaim: $resent rows resent over $days days ($counted read by each count), $due due, batch $batch, concurrency $concurrency, $(nproc) cores: without limits ${rate[none]} rows/s (${secs[none]} s, ${sent[none]} sent); with a daily budget and a range cap that hold nothing ${rate[limits]} rows/s (${secs[limits]} s, ${sent[limits]} sent, ${held[limits]} held); ratio $ratio, +$per_claim ms per claim ($claims claims)"
cat <<SECTION
## Spend claim

\`benchmarks/spend-claim.sh\`: \`sms-retry run\` over $due due rows (batch $batch, concurrency $concurrency, the lean
stand-in, no added latency) on a table with $resent rows resent over the last $days days, without spend limits and
with \`max_resends_per_day\` and \`max_resends_per_prefix_per_hour\` set so high they hold nothing: the difference is
each claim's count of the fleet's resends ($counted rows read) under the advisory lock. Median of $reps.

| | rows/s | seconds | sent | held |
|---|---|---|---|---|
| no limits | ${rate[none]} | ${secs[none]} | ${sent[none]} | 0 |
| budget and range cap | ${rate[limits]} | ${secs[limits]} | ${sent[limits]} | ${held[limits]} |
| ratio, and added per claim | $ratio | +$per_claim ms × $claims claims | | |
SECTION
