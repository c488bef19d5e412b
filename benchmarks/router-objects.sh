#!/usr/bin/env bash
# make router-objects: what each of sms-retry's objects on the router's table costs the router's
# own statements, in CPU instructions (callgrind), so the figure does not move with the machine's
# load as make router-cost's rates do.
#
#   benchmarks/router-objects.sh DATA_DIR
#
# Builds a throwaway PostgreSQL in DATA_DIR (the newest Debian server, as .ci/with-postgres): a
# 1M-row router table (benchmarks/seed.sql, the router's own index on (user_id, created_at)),
# then copies of it: before `migrate`, migrated (every migrations/NNN_*.up.sql from 002 with
# psql -f), migrated less each one sms-retry object in turn, and with 002's columns only. The
# server is then stopped, and each database runs the router's statements in a single-user
# backend under valgrind: 200 and then 600 of a kind, so that (I(600) - I(200)) / 400 is the
# instructions of one statement, start-up left out. By default the simple protocol (each statement parsed and
# planned, as most drivers and ORMs send them). The UPDATEs go to 20 rows over and over, so
# they stay HOT as the router's do (pages pruned in between); the INSERT writes an outbound
# row that succeeded, the router's usual row.
#   ROWS=1000000       the table's rows
#   PROTOCOL=simple    or prepared: each kind PREPAREd once and EXECUTEd (a driver that prepares,
#                      as JDBC, pgx and psycopg 3 do after a few runs; PostgreSQL then reuses a
#                      generic plan, so no statement is planned)
#   VARIANTS="…"       the copies after before and migrated, by name (benchmarks/router-variants.sh)
#   SMS_RETRY_PG_SERVER_BIN=DIR   another server (as .ci/with-postgres; make test-pg's are under
#                      .build/pg/MAJOR), else the newest Debian one
# Prints a markdown table on stdout (progress on stderr). About 15 minutes on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
data=${1:?usage: benchmarks/router-objects.sh DATA_DIR}
rows=${ROWS:-1000000}
protocol=${PROTOCOL:-simple}
case $protocol in simple|prepared) ;; *) echo "router-objects: PROTOCOL is simple or prepared, not $protocol" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { echo "router-objects: valgrind is needed (apt-get install valgrind)" >&2; exit 2; }
bin=${SMS_RETRY_PG_SERVER_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
t0=$(date +%s)
say() { echo "== [$(( $(date +%s) - t0 )) s] $*" >&2; }
work=$(mktemp -d /tmp/sms-retry-objects.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# --- 1. the databases, on a server that .ci/with-postgres starts and stops -----------------------
# The variants (benchmarks/router-variants.sh): names, and the SQL that makes each from the migrated copy.
source "$here/router-variants.sh"
SMS_RETRY_OBJ_NAMES="${names[*]}" "$root/.ci/with-postgres" "$data" bash -c '
  set -euo pipefail
  q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
  source "'"$here"'/router-table.sh"
  q postgres -c "CREATE DATABASE before"
  router_table before '"$rows"'
  q before -c "VACUUM ANALYZE sms_usage_logs"
  q postgres -c "CREATE DATABASE migrated TEMPLATE before STRATEGY file_copy"
  migrate_by_psql migrated
  q migrated -c "VACUUM ANALYZE sms_usage_logs"
' >&2
say "before and migrated built"
# The variants, each a copy of migrated less one object (a second server start: with-postgres
# reuses the data directory).
variants_sql=$work/variants.sh
{
  echo 'set -euo pipefail'
  for n in "${names[@]}"; do
    [ "$n" = before ] || [ "$n" = migrated ] && continue
    printf 'psql -X -q -v ON_ERROR_STOP=1 -d postgres -c %q\n' "CREATE DATABASE $n TEMPLATE migrated STRATEGY file_copy"
    printf 'psql -X -q -v ON_ERROR_STOP=1 -d %s -c %q\n' "$n" "${make_sql[$n]}"
  done
} > "$variants_sql"
"$root/.ci/with-postgres" "$data" bash "$variants_sql" >&2
say "variants built: ${names[*]}"
data=$(cd "$data" && pwd)
# with-postgres stops its server in immediate mode: one single-user start recovers it first, so
# no measured run pays for the recovery.
echo "SELECT 1" | as_pg "$bin/postgres" --single -D "$data" postgres >/dev/null 2>&1

# --- 2. the statements -----------------------------------------------------------------------------
statements() {     # kind n
  python3 - "$1" "$2" "$protocol" "$rows" <<'PY'
import re, sys, random
kind, n, protocol, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
random.seed(7)
# Each kind once: its parameters' types, its text, one execution's values as SQL literals. The
# simple protocol sends the text with the values in place of $1, $2, ...; prepared, one PREPARE
# and an EXECUTE per statement.
types, text, values = {
    'update_time': (['int', 'int'], "UPDATE sms_usage_logs SET processing_time_ms = $1 WHERE id = $2",
                    lambda i, rid: [str(random.randrange(1000)), str(rid)]),
    'update_metadata': (['jsonb', 'int'], "UPDATE sms_usage_logs SET sms_metadata = $1 WHERE id = $2",
                        lambda i, rid: [f"'{{\"campaign\": \"c{i % 7}\", \"locale\": \"en\", \"twilio_ms\": {i}}}'", str(rid)]),
    'insert': (['int', 'text', 'text'],
               "INSERT INTO sms_usage_logs (user_id, phone_number, message_direction, message_length, message_content, success, processing_time_ms, error_message, sms_metadata, created_at) VALUES ($1, $2, 'outbound', 20, $3, true, 120, NULL, '{\"campaign\": \"c1\"}', now())",
               lambda i, rid: [str(i), f"'+14155550{i % 1000:03d}'", f"'message number {i}'"]),
}[kind]
if protocol == 'prepared':
    print(f"PREPARE s({', '.join(types)}) AS {text}")
for i in range(n):
    rid = rows - 500 * random.randrange(20)
    v = values(i, rid)
    if protocol == 'prepared':
        print(f"EXECUTE s({', '.join(v)})")
    else:
        print(re.sub(r'\$(\d)', lambda m: v[int(m.group(1)) - 1] + ('' if types[int(m.group(1)) - 1] in ('int', 'text') else '::' + types[int(m.group(1)) - 1]), text))
PY
}
kinds="insert update_time update_metadata"
for k in $kinds; do for n in 200 600; do statements "$k" "$n" > "$work/$k-$n.sql"; done; done
chmod 644 "$work"/*.sql

instructions() {   # db kind n → total instructions of a single-user backend running them
  local out=$work/cg.out
  rm -f "$out"
  as_pg valgrind --tool=callgrind --callgrind-out-file="$out" "$bin/postgres" --single -D "$data" \
      -c fsync=off -c autovacuum=off "$1" < "$work/$2-$3.sql" >/dev/null 2>"$work/vg.err" \
    || { cat "$work/vg.err" >&2; exit 3; }
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}
chmod 777 "$work"

declare -A per
for db in "${names[@]}"; do
  for k in $kinds; do
    a=$(instructions "$db" "$k" 200); b=$(instructions "$db" "$k" 600)
    per[$db.$k]=$(( (b - a) / 400 ))
  done
  say "$db: insert ${per[$db.insert]} update_time ${per[$db.update_time]} update_metadata ${per[$db.update_metadata]}"
done

# --- 3. the report -----------------------------------------------------------------------------------
k() { awk -v v="$1" 'BEGIN { printf "%.0f", v / 1000 }'; }
d() { awk -v v="$1" 'BEGIN { printf "%+.0f", v / 1000 }'; }    # a difference, signed
echo "Thousands of instructions per router statement (callgrind, PostgreSQL $("$bin/postgres" --version | awk '{print $3}') single-user, $rows rows, $protocol protocol; (I(600) - I(200)) / 400; \`$([ "$protocol" = simple ] || echo "PROTOCOL=$protocol ")make router-objects\`)."
echo
echo "| table | INSERT | UPDATE processing_time_ms | UPDATE sms_metadata |"
echo "|---|---|---|---|"
for db in "${names[@]}"; do
  echo "| $db | $(k "${per[$db.insert]}") | $(k "${per[$db.update_time]}") | $(k "${per[$db.update_metadata]}") |"
done
echo
echo "What each object costs (migrated less the copy without it; columns: 002's columns with no index or trigger, less before):"
echo
echo "| object | INSERT | UPDATE processing_time_ms | UPDATE sms_metadata |"
echo "|---|---|---|---|"
for db in "${names[@]}"; do
  case $db in
    less_*) echo "| ${db#less_} | $(d $(( per[migrated.insert] - per[$db.insert] ))) | $(d $(( per[migrated.update_time] - per[$db.update_time] ))) | $(d $(( per[migrated.update_metadata] - per[$db.update_metadata] ))) |" ;;
  esac
done
echo "| 002's columns | $(d $(( per[columns_only.insert] - per[before.insert] ))) | $(d $(( per[columns_only.update_time] - per[before.update_time] ))) | $(d $(( per[columns_only.update_metadata] - per[before.update_metadata] ))) |"
echo "| all of sms-retry | $(d $(( per[migrated.insert] - per[before.insert] ))) | $(d $(( per[migrated.update_time] - per[before.update_time] ))) | $(d $(( per[migrated.update_metadata] - per[before.update_metadata] ))) |"
say "done"
