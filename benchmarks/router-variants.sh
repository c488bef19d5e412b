# Shared by router-objects.sh and router-ab.sh (sourced): the copies of the router's table they
# compare. `before` is the router's table as it is, `migrated` the same rows after every
# migration; each other variant is a copy of `migrated` made by its SQL: less one of sms-retry's
# objects, or `columns_only` (002's columns, no index of sms-retry's, no trigger).
declare -a names=(before migrated less_guard_trigger less_brin_idx less_opt_out_idx less_work_idx less_failed_idx less_sid_idx columns_only)
declare -A make_sql=(
  [migrated]=""
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
