#!/usr/bin/env bash
# make router-ab: what each of sms-retry's objects costs the router's rate, object by object, in
# pgbench transactions per second (make router-objects counts instructions instead, which do not
# move with the machine's load but miss what an instruction count cannot see: a row lock's WAL
# record, a wider row's bytes).
#
#   benchmarks/router-ab.sh          (under .ci/with-postgres: PG* set)
#
# Builds the copies of benchmarks/router-variants.sh (the router's table before `migrate`, the
# migrated one, the migrated one less each object, and 002's columns only) from a ROWS-row table,
# then ROUNDS rounds: in each, every copy runs the statement for DURATION seconds in turn (the
# order rotated from round to round, so none always runs first or last). A copy's figure is the
# median over the rounds of its tps divided by `before`'s in the same round (pairs a few seconds
# apart, so a drift of the shared cores' speed moves both alike), and of migrated's tps divided
# by its own: what the object it lacks costs.
#   ROWS=1000000 ROUNDS=6 DURATION=5 KINDS="update_time insert" PROTOCOL=simple
#   KINDS: update_time (UPDATE processing_time_ms by id), update_metadata (UPDATE sms_metadata by
#          id), insert (one router row, 3 % failed): benchmarks/router-statements/, as make
#          router-cost runs them.
#   VARIANTS="less_brin_idx merged_work_failed ..."  the copies after before and migrated, by
#          name (benchmarks/router-variants.sh; default: each object less in turn, columns_only)
# Prints a markdown table on stdout (progress on stderr). About 12 minutes with the defaults.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rows=${ROWS:-1000000}
rounds=${ROUNDS:-6}
secs=${DURATION:-5}
kinds=${KINDS:-update_time insert}
protocol=${PROTOCOL:-simple}
t0=$(date +%s)
say() { echo "== [$(( $(date +%s) - t0 )) s] $*" >&2; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
val() { local db=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$here/router-variants.sh"
source "$here/router-table.sh"

# --- 1. the copies ----------------------------------------------------------------------------------
say "before: the router's table (001), $rows rows (benchmarks/seed.sql), its own index on (user_id, created_at)"
for db in "${names[@]}"; do q postgres -c "DROP DATABASE IF EXISTS $db"; done
q postgres -c "CREATE DATABASE before"
router_table before "$rows"
q postgres -c "CREATE DATABASE migrated TEMPLATE before STRATEGY file_copy"
migrate_by_psql migrated
# The UPDATEs go to the newest 100k rows: rewritten once here, so that in every copy they are rows
# as the router writes them (after migrate, with the new columns in the row itself) and the
# runs' first updates do not widen them.
window=$(( rows < 100000 ? rows : 100000 ))
for db in before migrated; do
  q "$db" -c "UPDATE sms_usage_logs SET processing_time_ms = processing_time_ms WHERE id > $rows - $window" -c "VACUUM ANALYZE sms_usage_logs"
done
for db in "${names[@]}"; do
  [ "$db" = before ] || [ "$db" = migrated ] && continue
  q postgres -c "CREATE DATABASE $db TEMPLATE migrated STRATEGY file_copy"
  q "$db" -c "${make_sql[$db]}"
done
say "copies: ${names[*]}"

# --- 3. the rounds --------------------------------------------------------------------------------------
say "pgbench -n -M $protocol -c 4 -j 2 -T $secs; $rounds rounds of: $kinds on each copy in turn"
for kind in $kinds; do
  for round in $(seq "$rounds"); do
    order=("${names[@]:round % ${#names[@]}}" "${names[@]:0:round % ${#names[@]}}")
    for db in "${order[@]}"; do
      tps=$(pgbench -n -M "$protocol" -c 4 -j 2 -T "$secs" -D maxid="$rows" -D window="$window" -f "$here/router-statements/$kind.sql" "$db" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
      echo "$round $db $tps" >> "$tmp/$kind.tps"
    done
    say "  $kind round $round: $(awk -v r="$round" '$1 == r { printf "%s %.0f  ", $2, $3 }' "$tmp/$kind.tps")"
  done
done
load1=$(cut -d' ' -f1 /proc/loadavg)
[ -n "${KEEP_DBS:-}" ] || for db in "${names[@]}"; do q postgres -c "DROP DATABASE $db"; done

# --- 4. the report ----------------------------------------------------------------------------------------
ratio_med() {   # kind db base → the median over rounds of db's tps / base's
  awk -v d="$2" -v b="$3" '$2 == d { x[$1] = $3 } $2 == b { y[$1] = $3 } END { for (r in x) if (y[r] > 0) printf "%.4f\n", x[r] / y[r] }' "$tmp/$1.tps" | median
}
echo "Each copy's rate, in pgbench tps relative to the router's table before \`migrate\` (the median over $rounds rounds of"
echo "its tps / before's in the same round), and what the object it lacks costs (migrated / the copy, the same way):"
echo "PostgreSQL $(val postgres "SHOW server_version" | cut -d' ' -f1), $rows rows, pgbench -M $protocol -c 4 -j 2 -T $secs per run,"
echo "$(nproc) cores shared by the server and pgbench, load average $load1 at the end (\`make router-ab\`)."
echo
printf '| copy |'; for kind in $kinds; do printf ' %s: / before | %s: migrated / copy |' "$kind" "$kind"; done; echo
printf '|---|'; for kind in $kinds; do printf -- '---|---|'; done; echo
for db in "${names[@]}"; do
  printf '| %s |' "$db"
  for kind in $kinds; do
    printf ' %.3f | %s |' "$(ratio_med "$kind" "$db" before)" "$([ "$db" = migrated ] && echo — || printf '%.3f' "$(ratio_med "$kind" migrated "$db")")"
  done
  echo
done
say "done"
