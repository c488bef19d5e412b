# Sourced by the router benchmarks (router-cost.sh, router-ab.sh, router-objects.sh,
# period-scan.sh): the router's table as they all build it, and the migrations as an operator
# applies them with psql -f. PG* set (.ci/with-postgres).
router_table_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# router_table DB ROWS: in DB (it exists), migration 001 (the router's table), ROWS rows of
# benchmarks/seed.sql (3 % failed) and the router's own index on (user_id, created_at): a router
# reads its users' messages by user and time, so "the table's index size" is not the primary key
# alone. No VACUUM: each benchmark does its own when its rows are as it wants them.
router_table() {
  local db=$1 rows=$2
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$router_table_root/migrations/001_baseline.up.sql"
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" -v rows="$rows" -v fail_permille=30 -f "$router_table_root/benchmarks/seed.sql"
  psql -X -q -v ON_ERROR_STOP=1 -d "$db" \
    -c "CREATE INDEX sms_usage_logs_user_id_created_at_idx ON sms_usage_logs (user_id, created_at)" \
    -c "COMMENT ON INDEX sms_usage_logs_user_id_created_at_idx IS 'router: its own index (router benchmarks)'"
}

# migrate_by_psql DB: every migrations/NNN_*.up.sql from 002 on, in order, with psql -f (so the
# benchmarks measure whatever migrations exist); each file's name on stderr.
migrate_by_psql() {
  local db=$1 f n
  for f in "$router_table_root"/migrations/[0-9][0-9][0-9]_*.up.sql; do
    n=$(basename "$f"); n=${n%%_*}
    [ $((10#$n)) -ge 2 ] || continue
    echo "  $(basename "$f")" >&2
    PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$f" >/dev/null
  done
}
