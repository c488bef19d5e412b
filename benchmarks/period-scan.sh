#!/usr/bin/env bash
# What the views that read the period's rows by created_at (the overview's period total, health's
# unconfirmed count) and the daily view cost with and without sms-retry's BRIN index on
# created_at: the price of giving that index up for the router's INSERT (docs/ARCHITECTURE.md,
# "What the router pays"). The router's table of ROWS rows as the router benchmarks build it
# (benchmarks/router-table.sh: seed.sql's 30 days, 3 % failed; no index of the router's that
# leads with created_at), every migration, then EXPLAIN (ANALYZE, TIMING OFF) of each view, best
# of 3, before and after DROP INDEX. About 2 minutes at 10M rows.
#   .ci/with-postgres DATA_DIR benchmarks/period-scan.sh        ROWS=10000000
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rows=${ROWS:-10000000}
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
source "$here/router-table.sh"
q -d postgres -c "DROP DATABASE IF EXISTS period_scan" -c "CREATE DATABASE period_scan"
export PGDATABASE=period_scan
router_table period_scan "$rows"
migrate_by_psql period_scan
q -c "VACUUM ANALYZE sms_usage_logs"
best() { for _ in 1 2 3; do psql -X -At -c "EXPLAIN (ANALYZE, TIMING OFF) $1" | sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p'; done | sort -g | head -n 1; }
echo "$rows rows, plain table, $(psql -X -At -c "SELECT count(*) FROM sms_usage_logs WHERE created_at >= localtimestamp - interval '1 day'") in the last day; PostgreSQL $(psql -X -At -c 'SHOW server_version'); ms, best of 3:"
for phase in "with the BRIN index" "without it"; do
  [ "$phase" = "without it" ] && q -c "DROP INDEX sms_usage_logs_created_at_brin_idx" -c "ANALYZE sms_usage_logs"
  echo "$phase: overview $(best 'SELECT * FROM sms_retry_overview'), health $(best 'SELECT * FROM sms_retry_health'), daily $(best 'SELECT * FROM sms_retry_daily')"
done
q -d postgres -c "DROP DATABASE period_scan"
