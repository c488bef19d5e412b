# Shared by bench.sh and core.sh (sourced).

# Best of 3 execution times of each analytics view (EXPLAIN ANALYZE without per-node timing, whose
# clock reads would add to a scan of many rows), one "view ms" line each.
view_times() {
  for view in sms_retry_overview sms_retry_by_attempt sms_retry_by_error_code sms_retry_queue sms_retry_daily sms_retry_health; do
    best=$(for _ in 1 2 3; do
      psql -AtX -c "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT * FROM $view" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
    done | sort -g | head -n 1)
    printf '%s %.1f\n' "$view" "$best"
  done
}
