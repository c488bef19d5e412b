# Shared by router-objects.sh and router-ab.sh (sourced): the copies of the router's table they
# compare. `before` is the router's table as it is, `migrated` the same rows after every
# migration; each other variant is a copy of `migrated` made by its SQL: less one of sms-retry's
# objects, `columns_only` (002's columns, no index of sms-retry's, no trigger), or one of the
# other shapes weighed for the router's INSERT (docs/ARCHITECTURE.md, "What the router pays"):
# `merged_work_failed` (the work and failed-rows indexes as one), `no_defaults` (002's three
# column defaults and NOT NULLs gone), `work_lean` (the work index's predicate without its
# function call and retry_count test). VARIANTS="name ..." picks the copies after `before` and
# `migrated` (default: every object less in turn, then columns_only).
declare -A make_sql=(
  [migrated]=""
  [merged_work_failed]="DROP INDEX sms_usage_logs_retry_work_idx; DROP INDEX sms_usage_logs_retry_failed_idx;
      CREATE INDEX sms_usage_logs_retry_merged_idx ON sms_usage_logs (next_retry_at, created_at) INCLUDE (retry_count, message_direction, success)
      WHERE success = false OR retry_count > 0; COMMENT ON INDEX sms_usage_logs_retry_merged_idx IS 'sms-retry: router-variants'"
  [no_defaults]="ALTER TABLE sms_usage_logs ALTER retry_count DROP DEFAULT, ALTER retry_count DROP NOT NULL,
      ALTER max_retries DROP DEFAULT, ALTER max_retries DROP NOT NULL, ALTER final_status DROP DEFAULT, ALTER final_status DROP NOT NULL"
  [work_lean]="DROP INDEX sms_usage_logs_retry_work_idx; CREATE INDEX sms_usage_logs_retry_work_idx ON sms_usage_logs (next_retry_at, created_at)
      WHERE success = false AND (next_retry_at IS NOT NULL OR sms_retry IS NULL); COMMENT ON INDEX sms_usage_logs_retry_work_idx IS 'sms-retry: router-variants'"
  [less_guard_trigger]="DROP TRIGGER sms_retry_guard ON sms_usage_logs"
  [less_brin_idx]="DROP INDEX sms_usage_logs_created_at_brin_idx"
  [less_opt_out_idx]="DROP INDEX sms_usage_logs_opt_out_v4_idx"
  [less_work_idx]="DROP INDEX sms_usage_logs_retry_work_idx"
  [less_failed_idx]="DROP INDEX sms_usage_logs_retry_failed_idx"
  [less_sid_idx]="DROP INDEX sms_usage_logs_twilio_sid_idx"
  [columns_only]="DO \$\$ DECLARE i regclass; BEGIN
      FOR i IN SELECT indexrelid::regclass FROM pg_index
               WHERE indrelid = 'sms_usage_logs'::regclass AND obj_description(indexrelid, 'pg_class') LIKE 'sms-retry%'
      LOOP EXECUTE format('DROP INDEX %s', i); END LOOP;
      EXECUTE 'DROP TRIGGER IF EXISTS sms_retry_guard ON sms_usage_logs'; END \$\$"
)
declare -a names=(before migrated ${VARIANTS:-less_guard_trigger less_brin_idx less_opt_out_idx less_work_idx less_failed_idx less_sid_idx columns_only})
for n in "${names[@]:2}"; do
  [ -n "${make_sql[$n]+set}" ] && [ "$n" != migrated ] \
    || { echo "router-variants: no copy named $n (VARIANTS; known: ${!make_sql[*]})" >&2; exit 2; }
done
