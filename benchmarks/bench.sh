#!/usr/bin/env bash
# make bench: every benchmark of benchmarks/README.md, results written to benchmarks/results.md.
# Runs under .ci/with-postgres (PG* set); $1 = the release build folder.
#   SECTIONS="cpu throughput latency views1m migration views10m claim memory routercost reconcile" REPS=3 make bench
# Optional, not in the default list: spendclaim (benchmarks/spend-claim.sh, what the spend limits cost a run).
set -euo pipefail
bin=$1
here=$(cd "$(dirname "$0")" && pwd)
out=${BENCH_OUT:-$here/results.md}
reps=${REPS:-3}
sections=${SECTIONS:-cpu throughput latency views1m migration views10m claim memory routercost reconcile}
tmp=$(mktemp -d)
. "$here/lib.sh"
standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

export TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000 TWILIO_AUTH_TOKEN=bench-token TWILIO_FROM_NUMBER=+15005550006
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
say() { echo "== $*" >&2; }
emit() { echo "$*" >> "$out"; }

standin_start() {   # latency in ms
  [ -n "$standin" ] && standin_stop
  "$bin/lean-standin" --latency-ms "$1" > "$tmp/url" &
  standin=$!
  for _ in $(seq 100); do [ -s "$tmp/url" ] && break; sleep 0.1; done
  export TWILIO_API_BASE_URL=$(head -n 1 "$tmp/url")
}
standin_stop() { kill "$standin" 2>/dev/null || true; wait "$standin" 2>/dev/null || true; standin=""; }

fresh_db() {        # name [table.sql]: an empty database with the router's table only
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  export PGDATABASE=$1
  psql -q -v ON_ERROR_STOP=1 -f "${2:-$here/../migrations/001_baseline.up.sql}"
}
seed() {            # rows fail_permille [shuffle: 1 = ids in no order of created_at]
  say "seeding $1 rows into $PGDATABASE"
  psql -q -v ON_ERROR_STOP=1 -v rows="$1" -v fail_permille="$2" -v shuffle="${3:-0}" -f "$here/seed.sql"
}
migrate() { "$bin/sms-retry" migrate --dir "$here/../migrations" --log-level warning >&2; }
has_db() { [ "$(psql -AtX -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
use_1m() {          # the 1M-row database of the throughput section, made here when missing
  if has_db bench_1m; then export PGDATABASE=bench_1m; return; fi
  fresh_db bench_1m; seed 1000000 160; migrate
  set_due 10000; standin_start 0
  "$bin/sms-retry" run --log-level warning --max-age 60d --max-runtime 600 >&2 || true   # some history for the views
  standin_stop
}
use_views_1m() {    # 1M rows with a realistic 3 % failed and 10k of them resent (history for the views)
  if has_db bench_views_1m; then export PGDATABASE=bench_views_1m; return; fi
  fresh_db bench_views_1m; seed 1000000 30; migrate
  set_due 10000; standin_start 0
  "$bin/sms-retry" run --log-level warning --max-age 60d --max-runtime 600 >&2 || true
  standin_stop
}
use_10m() {         # the 10M-row database of the migration section, made here when missing
  if has_db bench_10m; then export PGDATABASE=bench_10m; return; fi
  fresh_db bench_10m; seed 10000000 30; migrate
}
use_10m_partitioned() {   # the same rows in a table partitioned by month (benchmarks/partitioned.sql)
  if has_db bench_10m_part; then export PGDATABASE=bench_10m_part; return; fi
  fresh_db bench_10m_part "$here/partitioned.sql"; seed 10000000 30; migrate
}
use_10m_shuffled() {      # the same rows, their ids in no order of created_at
  if has_db bench_10m_shuffled; then export PGDATABASE=bench_10m_shuffled; return; fi
  fresh_db bench_10m_shuffled; seed 10000000 30 1; migrate
}
use_10m_scattered() {     # the same rows written in no order of created_at: BRIN's worst case
  if has_db bench_10m_scattered; then export PGDATABASE=bench_10m_scattered; return; fi
  fresh_db bench_10m_scattered; seed 10000000 30 2; migrate
}
# Each view's figures against a plain count(*) over the same rows: "ok", or what differs.
# "Failed" is what the views count: outbound, failed at least once (success false now, or a
# resend recovered it).
view_check() {
  psql -AtX -c "
    WITH p AS (SELECT sms_retry_router_time(now()) - sms_retry_period() AS since),
    logs AS (SELECT s.created_at, sms_retry_direction(s.message_direction) = 'outbound' AS outbound,
                    (NOT s.success OR s.retry_count > 0) AS failed
             FROM sms_usage_logs s),
    truth AS (SELECT count(*) FILTER (WHERE outbound) AS outbound, count(*) FILTER (WHERE outbound AND failed) AS failed
              FROM logs, p WHERE created_at >= p.since),
    per_day AS (SELECT created_at::date AS day, count(*) AS n FROM logs WHERE outbound AND failed GROUP BY 1),
    days AS (SELECT d.day FROM sms_retry_daily d LEFT JOIN per_day t USING (day) WHERE d.failures <> coalesce(t.n, 0))
    SELECT concat_ws(' ',
             CASE WHEN o.outbound_messages <> t.outbound THEN format('overview.outbound_messages %s <> count(*) %s;', o.outbound_messages, t.outbound) END,
             CASE WHEN o.failed_messages <> t.failed THEN format('overview.failed_messages %s <> count(*) %s;', o.failed_messages, t.failed) END,
             CASE WHEN (SELECT sum(messages) FROM sms_retry_by_error_code) <> t.failed THEN 'by_error_code.messages <> count(*);' END,
             CASE WHEN EXISTS (SELECT 1 FROM days) THEN format('daily.failures <> count(*) on %s days;', (SELECT count(*) FROM days)) END)
    FROM sms_retry_overview o, truth t" | sed 's/^$/ok/'
}
set_due() {         # n: exactly n rows due now
  psql -q -c "UPDATE sms_usage_logs SET sms_retry = sms_retry_step(sms_retry), next_retry_at = NULL WHERE next_retry_at IS NOT NULL"
  psql -q -v due="$1" -f "$here/due.sql"
  psql -q -c "VACUUM ANALYZE sms_usage_logs"
}
# Each measurement gets a fresh stand-in (it keeps every message it received), at $latency ms.
run_rate() {        # concurrency batch → rows/s of one sms-retry run over the due rows
  local line
  standin_start "$latency"
  line=$("$bin/sms-retry" run --log-level warning --concurrency "$1" --batch-size "$2" --max-age 60d --max-runtime 3600 || true)
  echo "$line" | awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } } END { printf "%.1f\n", f["sent"] / f["seconds"] }'
}
ceiling_rate() {    # requests concurrency → requests/s through the same client, no database
  standin_start "$latency"
  "$bin/sms-retry-bench" http --requests "$1" --concurrency "$2" | sed 's/.*rate=//'
}

# ---------------------------------------------------------------------------------------------
cat > "$out" <<HEADER
# Benchmark results

Written by \`make bench\` (benchmarks/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null || echo unknown).

| machine | |
|---|---|
| cores | $(nproc) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')) |
| memory | $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) |
| PostgreSQL | $(psql -AtX -c 'SHOW server_version') (throwaway settings: fsync off, shared_buffers $(psql -AtX -c 'SHOW shared_buffers')) |
| Swift | $(swift --version 2>/dev/null | head -n 1 | sed 's/^.*Swift version /Swift /') |

Medians of $reps runs unless said otherwise. Everything (PostgreSQL, the stand-in, sms-retry)
shares the same $(nproc) cores.
HEADER

lat_rows=()
for section in $sections; do
case $section in
cpu)
  # benchmarks/cpu.sh on a database of its own: CPU per row of each process, against wrk's
  fresh_db bench_cpu
  say "CPU per row: 10k due rows, concurrency 32, $reps rounds; then wrk"
  DUE=10000 CONCURRENCY=32 BATCH=100 ROUNDS=$reps "$here/cpu.sh" "$bin" > "$tmp/cpu"
  cat "$tmp/cpu" >&2
  read -r _ rate sms pg si rss _ < <(grep '^FIGURES' "$tmp/cpu")
  read -r _ wrk_rate wrk_us wrk_si < <(grep '^WRK' "$tmp/cpu")
  emit ""
  emit "## 0. CPU per resent row, each process (10k due rows, concurrency 32, batch 100, no added latency; /proc)"
  emit ""
  emit "\`make cpu\` (benchmarks/cpu.sh); medians of $reps rounds. The stand-in is benchmarks/Sources/lean-standin."
  emit ""
  emit "| | µs CPU per row (or request) | |"
  emit "|---|---|---|"
  emit "| sms-retry | $sms | $rate rows/s, peak RSS $(awk -v r="$rss" 'BEGIN { printf "%.1f MB", r / 1024 }') |"
  emit "| PostgreSQL (all server processes) | $pg | claim, record and the opt-out lookup |"
  emit "| stand-in, serving sms-retry | $si | |"
  emit "| wrk (1 thread, 32 connections, the same create request) | $wrk_us | $wrk_rate requests/s |"
  emit "| stand-in, serving wrk | $wrk_si | |"
  emit "| sms-retry / wrk | $(awk -v a="$sms" -v b="$wrk_us" 'BEGIN { printf "%.1f×", a / b }') | target ≤ 3× |"
  emit "| stand-in headroom: the rate it serves wrk at, / sms-retry's rows/s | $(awk -v a="$wrk_rate" -v r="$rate" 'BEGIN { printf "%.0f×", a / r }') | target ≥ 10× |"
  emit "| (the same from its CPU per row while serving sms-retry: one core / that, / sms-retry's rows/s) | $(awk -v a="$si" -v r="$rate" 'BEGIN { printf "%.0f×", 1e6 / a / r }') | fewer requests per wakeup cost it more each |"
  for c in 256 1024; do
    say "CPU and rate with 150 ms latency, concurrency $c"
    fresh_db bench_cpu
    DUE=$((c * 20)) CONCURRENCY=$c BATCH=$c ROUNDS=$reps LATENCY_MS=150 "$here/cpu.sh" "$bin" > "$tmp/cpu-$c"
    cat "$tmp/cpu-$c" >&2
    read -r _ rate sms pg si rss ratio < <(grep '^FIGURES' "$tmp/cpu-$c")
    lat_rows+=("| $c | $((c * 20)) | $rate | $(awk -v c="$c" 'BEGIN { printf "%.0f", c / 0.15 }') | $ratio | $sms | $pg |")
  done
  emit ""
  emit "### With 150 ms stand-in latency: rows/s against the ideal (concurrency / 0.15 s), batch = concurrency"
  emit ""
  emit "| concurrency | due rows | rows/s | ideal | ratio | sms-retry µs/row | PostgreSQL µs/row |"
  emit "|---|---|---|---|---|---|---|"
  for row in "${lat_rows[@]}"; do emit "$row"; done
  emit ""
  emit "Targets: ratio ≥ 0.9 at 256, ≥ 0.6 at 1024."
  ;;
throughput)
  use_1m
  latency=0
  runs=(); ceilings=()
  for rep in $(seq "$reps"); do
    say "throughput rep $rep: 100k due rows, concurrency 16"
    set_due 100000
    runs+=("$(run_rate 16 100)")
    ceilings+=("$(ceiling_rate 100000 16)")
  done
  run=$(printf '%s\n' "${runs[@]}" | median); ceiling=$(printf '%s\n' "${ceilings[@]}" | median)
  emit ""
  emit "## 1. Throughput: 1M-row table, 100k due rows, concurrency 16, no added latency"
  emit ""
  emit "| | rows/s (median) | runs |"
  emit "|---|---|---|"
  emit "| \`sms-retry run\` | $run | ${runs[*]} |"
  emit "| raw HTTP ceiling (same stand-in and client, no database) | $ceiling | ${ceilings[*]} |"
  emit "| ratio | $(awk -v a="$run" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }') | target ≥ 0.8 |"
  ;;
latency)
  use_1m
  latency=150
  emit ""
  emit "## 1b. With 150 ms stand-in latency (Twilio's real latency)"
  emit ""
  emit "| concurrency | due rows | \`run\` rows/s | ceiling rows/s | ratio | ideal (concurrency / 0.15 s) |"
  emit "|---|---|---|---|---|---|"
  for c in 16 64 256; do
    rows=$((c * 25)); runs=(); ceilings=()
    for rep in $(seq "$reps"); do
      say "latency 150 ms, concurrency $c, rep $rep"
      set_due "$rows"
      runs+=("$(run_rate "$c" $((c > 100 ? c : 100)))")
      ceilings+=("$(ceiling_rate "$rows" "$c")")
    done
    run=$(printf '%s\n' "${runs[@]}" | median); ceiling=$(printf '%s\n' "${ceilings[@]}" | median)
    emit "| $c | $rows | $run | $ceiling | $(awk -v a="$run" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }') | $(awk -v c="$c" 'BEGIN { printf "%.0f", c / 0.15 }') |"
  done
  standin_stop
  ;;
views1m|views10m)
  # views1m: one table. views10m: the same 10M rows as a plain table with ids in created_at
  # order, partitioned by month, plain with ids in no order of created_at, and plain written in
  # no order of created_at.
  if [ "$section" = views1m ]; then shapes="use_views_1m"; else shapes="use_10m use_10m_partitioned use_10m_shuffled use_10m_scattered"; fi
  for shape in $shapes; do
    $shape
    if [ "$section" = views10m ] && [ "$(psql -AtX -c "SELECT count(*) FROM sms_usage_logs WHERE retry_count > 0")" = 0 ]; then
      set_due 10000; standin_start 0   # some history for the views
      "$bin/sms-retry" run --log-level warning --max-age 60d --max-runtime 600 >&2 || true
      standin_stop
    fi
    psql -q -c "VACUUM ANALYZE sms_usage_logs"
    read -r total failed pending < <(psql -AtX -F ' ' -c "SELECT count(*), count(*) FILTER (WHERE success = false OR retry_count > 0), count(*) FILTER (WHERE next_retry_at IS NOT NULL) FROM sms_usage_logs")
    case $shape in use_10m_partitioned) what="partitioned by month (5 partitions)" ;; use_10m_shuffled) what="plain, ids in no order of created_at" ;; use_10m_scattered) what="plain, rows written in no order of created_at" ;; *) what="plain" ;; esac
    emit ""
    emit "## 5. Analytics views on $total rows, $what ($failed ever failed, $pending pending; EXPLAIN (ANALYZE, TIMING OFF) execution time, best of 3)"
    emit ""
    emit "Each view's figures against a plain \`count(*)\` over the same rows: $(view_check)"
    emit ""
    emit "| view | ms | target |"
    emit "|---|---|---|"
    view_times | while read -r view ms; do emit "| $view | $ms | < 100 |"; done
  done
  ;;
migration)
  fresh_db bench_10m; seed 10000000 30
  psql -q -c "VACUUM ANALYZE sms_usage_logs"
  say "writer alone for 10 s"
  rm -f "$tmp/stop"
  "$bin/sms-retry-bench" writer --until-file "$tmp/stop" > "$tmp/writer-alone" &
  writer=$!; sleep 10; touch "$tmp/stop"; wait "$writer"
  say "migrations 002-005 on 10M rows while the writer writes"
  rm -f "$tmp/stop"
  "$bin/sms-retry-bench" writer --until-file "$tmp/stop" > "$tmp/writer" &
  writer=$!; sleep 3
  start=$(date +%s.%N); migrate; end=$(date +%s.%N)
  sleep 2; touch "$tmp/stop"; wait "$writer"
  emit ""
  emit "## 4. Migration on a live 10M-row table"
  emit ""
  emit "\`sms-retry migrate\` (002 columns + CHECK NOT VALID + VALIDATE, 003 and 004 indexes CONCURRENTLY, 005 views) while"
  emit "another connection inserts a row and updates it, again and again. One run."
  emit ""
  emit "| | |"
  emit "|---|---|"
  emit "| migration wall time | $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f s", b - a }') |"
  emit "| writer during the migration | $(cat "$tmp/writer") |"
  emit "| writer alone, 10 s, for comparison | $(cat "$tmp/writer-alone") |"
  emit "| target | longest write wait < 1000 ms |"
  ;;
claim)
  emit ""
  emit "## 2. Claim cost against table size (10k due rows, 100-row batch: the runtime statement, 300 claims rolled back)"
  emit ""
  emit "| table rows | p50 ms | p99 ms |"
  emit "|---|---|---|"
  declare -A p50s
  for size in 100000 1000000 10000000; do
    case $size in
      100000) fresh_db bench_100k; seed 100000 30; migrate ;;
      1000000) use_1m ;;
      10000000) use_10m ;;
    esac
    set_due 10000
    line=$("$bin/sms-retry-bench" claim --times 300 --limit 100)
    p50=$(echo "$line" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p'); p99=$(echo "$line" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')
    p50s[$size]=$p50
    emit "| $size | $p50 | $p99 |"
  done
  emit "| p50 at 10M / p50 at 100k | $(awk -v a="${p50s[10000000]}" -v b="${p50s[100000]}" 'BEGIN { printf "%.2f", a / b }') (target ≤ 1.5) | |"
  ;;
memory)
  use_10m
  say "1M due rows"
  set_due 1000000
  standin_start 0
  /usr/bin/time -f "%M" -o "$tmp/rss" "$bin/sms-retry" run --log-level warning --max-age 60d --max-runtime 60 > "$tmp/mem-run" || true
  standin_stop
  emit ""
  emit "## 3. Memory: \`sms-retry run\` with 1M due rows (10M-row table, 60 s run)"
  emit ""
  emit "| peak RSS | rows in that time | target |"
  emit "|---|---|---|"
  emit "| $(awk '{ printf "%.1f MB", $1 / 1024 }' "$tmp/rss") | $(cat "$tmp/mem-run") | < 64 MB |"
  ;;
routercost)
  # benchmarks/router-cost.sh (make router-cost): the router's INSERT and UPDATEs on two copies of
  # a 1M-row table, before and after `sms-retry migrate`; it prints its own markdown section.
  say "router cost: the router's writes on 1M rows before and after sms-retry migrate"
  REPS=$reps "$here/router-cost.sh" "$bin/sms-retry" migrate --dir "$here/../migrations" --log-level warning > "$tmp/routercost"
  emit ""
  sed 's/^## Router cost/## 6. Router cost/' "$tmp/routercost" >> "$out"
  ;;
reconcile)
  # benchmarks/reconcile-rate.sh: one reconcile over router sends whose callbacks were lost, by
  # the list and by SID, without and with 150 ms latency; it prints its own markdown section.
  say "reconcile rate: the sweep against the lean stand-in"
  standin_stop
  "$here/reconcile-rate.sh" "$bin" > "$tmp/reconcile"
  emit ""
  sed 's/^## Reconcile rate/## 7. Reconcile rate/' "$tmp/reconcile" >> "$out"
  ;;
spendclaim)
  # benchmarks/spend-claim.sh: `run` over 10k due rows with 100k resends in the window, without
  # and with a daily budget and a range cap (each claim counts the fleet's resends under a lock).
  say "spend claim: run without and with spend limits"
  standin_stop
  REPS=$reps "$here/spend-claim.sh" "$bin" > "$tmp/spendclaim"
  emit ""
  grep -v '^FIGURE' "$tmp/spendclaim" | sed 's/^## Spend claim/## 8. Spend claim/' >> "$out"
  grep '^FIGURE' "$tmp/spendclaim" >&2
  ;;
esac
done
say "results in $out"
cat "$out"
