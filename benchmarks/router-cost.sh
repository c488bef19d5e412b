#!/usr/bin/env bash
# make router-cost: what sms-retry's migrations cost the router's own writes. Two copies of one
# 1M-row table, rc_before (the router's table as it is) and rc_after (the same rows, migrated),
# the router's three statements run by pgbench against each in turn, and the tables' sizes.
#
#   benchmarks/router-cost.sh [MIGRATE COMMAND...]     (under .ci/with-postgres: PG* set)
#
# The migrate command runs with PGDATABASE=rc_after; by default every migrations/NNN_*.up.sql
# from 002 on, in order, with psql -f (so it measures whatever migrations exist). make bench
# passes `sms-retry migrate`.
#   ROWS=1000000 DURATION=10 REPS=5     seconds per pgbench run, runs per statement and database
#                                        (40 runs: about 8 min in all, seeding included; on 2 shared
#                                        cores one pair's ratio moves by ±5 %, so 5 pairs at least)
#   QUICK=1                              DURATION=5 REPS=1 unless set (about 1 min)
#   RECENT=100000                        the UPDATEs pick a random row among this many newest
#   PROTOCOL=simple                      pgbench -M: simple (each statement planned anew, as most
#                                        drivers and ORMs send them), extended or prepared
#   KEEP_DBS=1                           leave rc_before and rc_after in place (dropped by default)
# Prints a markdown report on stdout (progress on stderr) and exits 0 whether or not the goals
# are met: each goal is printed as met or NOT met with its figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
migrations=$here/../migrations
rows=${ROWS:-1000000}
if [ -n "${QUICK:-}" ]; then secs=${DURATION:-5}; reps=${REPS:-1}; else secs=${DURATION:-10}; reps=${REPS:-5}; fi
recent=${RECENT:-100000}
protocol=${PROTOCOL:-simple}
clients=4 threads=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
load0=$(cut -d' ' -f1 /proc/loadavg)
say() { echo "== [$(( $(date +%s) - t0 )) s] $*" >&2; }
q() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
val() { local db=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -d "$db" -c "$*"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

source "$here/router-table.sh"

# --- 1. the two databases -----------------------------------------------------------------------
say "rc_before: the router's table (001), $rows rows (benchmarks/seed.sql), its own index on (user_id, created_at)"
q postgres -c "DROP DATABASE IF EXISTS rc_after" -c "DROP DATABASE IF EXISTS rc_before" -c "CREATE DATABASE rc_before"
router_table rc_before "$rows"
q rc_before -c "VACUUM ANALYZE sms_usage_logs"
say "rc_after: a copy of rc_before (CREATE DATABASE ... TEMPLATE), then migrated"
q postgres -c "CREATE DATABASE rc_after TEMPLATE rc_before STRATEGY file_copy"
mstart=$(date +%s.%N)
if [ $# -gt 0 ]; then
  say "  migrate: $*"
  (export PGDATABASE=rc_after; unset DATABASE_URL; "$@") >&2
  how="\`$*\`"
else
  migrate_by_psql rc_after
  how="psql -f each migrations/NNN_*.up.sql from 002 on"
fi
mend=$(date +%s.%N)
applied=$(cd "$migrations" && ls [0-9][0-9][0-9]_*.up.sql | sed -n 's/^\([0-9]*\)_.*/\1/p' | tr '\n' ' ' | sed 's/ $//')

sizes() {           # db → "name bytes kind" lines: heap, then each index (router / sms-retry)
  val "$1" "SELECT 'heap', pg_relation_size('sms_usage_logs'), 'heap'
            UNION ALL
            SELECT c.relname, pg_relation_size(i.indexrelid),
                   CASE WHEN obj_description(i.indexrelid, 'pg_class') LIKE 'sms-retry%' THEN 'sms-retry' ELSE 'router' END
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'sms_usage_logs'::regclass" | tr '|' ' '
}
sizes rc_before > "$tmp/sizes-before-start"
sizes rc_after > "$tmp/sizes-after-start"

# --- 2. the router's statements -----------------------------------------------------------------
# One statement per transaction, as the router sends them: benchmarks/router-statements/KIND.sql
# (make router-ab runs the same files). The UPDATEs pick a random row among the newest (maxid is
# read before each run; window, below): the router updates the rows it just wrote. No variable
# inside a quoted literal: with -M extended or prepared, pgbench makes each variable a parameter.
# An ORM writes the whole sms_metadata value: a new object with several keys, different each time.
# The router's word on a row, success turned over (its callback says delivered, or failed): the
# work and failed indexes read success, so after migrate that UPDATE is not HOT: no goal, the
# issue asks only what it costs.
# An ORM writes the whole value: a new object with several keys, different each time.
# The router's word on a row: success turned over (its callback says delivered, or failed). The
# due, retry-rows and adoption indexes read success, so after migrate this UPDATE is not HOT: no
# goal, the issue asks only what it costs.
kinds="insert update_time update_metadata update_success"
declare -A label=([insert]="INSERT one row" [update_time]="UPDATE processing_time_ms by id"
                  [update_metadata]="UPDATE sms_metadata = '{...}'::jsonb by id"
                  [update_success]="UPDATE success = NOT success by id (no goal)")

counters() { val "$1" "SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'sms_usage_logs'" | tr '|' ' '; }
# The server's CPU for a run: the postmaster's cutime + cstime (/proc/PID/stat fields 16, 17)
# collect its children that have exited, pgbench's backends among them, once they are gone. tps
# follows whatever else runs on the shared cores; CPU per statement much less.
postmaster=$(head -n 1 "$(val postgres "SHOW data_directory")/postmaster.pid" 2>/dev/null || true)
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
server_ticks() { if [ -n "$postmaster" ] && [ -r "/proc/$postmaster/stat" ]; then awk '{ print $16 + $17 }' "/proc/$postmaster/stat"; else echo 0; fi; }

# One pgbench run → "tps txns upd hot" (the table's counters' deltas over the run). On PostgreSQL 15
# a backend flushes its counters at most once a second at commit, and at exit: pgbench's backends
# flush as they exit, just after pgbench returns, so wait until the counters account for every
# transaction pgbench counted (each one writes one row).
bench_run() {       # db kind window
  local db=$1 kind=$2 window=$3 ins0 upd0 hot0 ins1 upd1 hot1 maxid out tps txns i c0 c1
  read -r ins0 upd0 hot0 < <(counters "$db")
  maxid=$(val "$db" "SELECT max(id) FROM sms_usage_logs")
  c0=$(server_ticks)
  out=$(pgbench -n -M "$protocol" -c "$clients" -j "$threads" -T "$secs" -D maxid="$maxid" -D window="$window" -f "$here/router-statements/$kind.sql" "$db" 2>&1) \
    || { echo "$out" >&2; return 1; }
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
  txns=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  for i in $(seq 100); do
    read -r ins1 upd1 hot1 < <(counters "$db")
    if [ "$kind" = insert ]; then [ $((ins1 - ins0)) -ge "$txns" ] && break
    else [ $((upd1 - upd0)) -ge "$txns" ] && break; fi
    sleep 0.1
  done
  [ "$i" -lt 100 ] || say "  (the statistics of $db still lack some of the $txns transactions after 10 s)"
  for i in $(seq 50); do
    [ "$(val postgres "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && break
    sleep 0.1
  done
  sleep 0.2   # the postmaster reaps the last of them
  c1=$(server_ticks)
  echo "$tps $txns $((upd1 - upd0)) $((hot1 - hot0)) $(( (c1 - c0) * tick_us ))"
}

say "pgbench: $kinds; $reps rep(s) of $secs s each per database, -M $protocol -c $clients -j $threads, before/after alternated"
# The UPDATEs' window: the RECENT newest rows, but only rows the INSERT runs wrote, and as many in
# both databases. The router updates rows it has just written, which after the migration carry
# the new columns; a seeded row from before it gets them on its first update (a wider version,
# which fits in its page less often) and would lower the HOT share for a reason the router
# never meets.
declare -A inserted=([before]=0 [after]=0)
windows=()
for rep in $(seq "$reps"); do
  # before then after on odd reps, after then before on even ones: neither always runs second
  if [ $((rep % 2)) = 1 ]; then order="before after"; else order="after before"; fi
  for kind in $kinds; do
    window=$recent
    for side in before after; do if [ "${inserted[$side]}" -lt "$window" ]; then window=${inserted[$side]}; fi; done
    if [ "$kind" != insert ]; then windows+=("$window"); fi
    for side in $order; do
      r=$(bench_run "rc_$side" "$kind" "$window")
      echo "$r" >> "$tmp/$kind.$side"
      if [ "$kind" = insert ]; then inserted[$side]=$(( ${inserted[$side]} + $(echo "$r" | cut -d' ' -f2) )); fi
      say "  rep $rep $kind $side: tps txns upd hot = $r$([ "$kind" = insert ] || echo " (window $window)")"
    done
  done
done
wmin=$(printf '%s\n' "${windows[@]}" | sort -n | head -n 1); wmax=$(printf '%s\n' "${windows[@]}" | sort -n | tail -n 1)
sizes rc_before > "$tmp/sizes-before-end"
sizes rc_after > "$tmp/sizes-after-end"
load1=$(cut -d' ' -f1 /proc/loadavg)
[ -n "${KEEP_DBS:-}" ] || q postgres -c "DROP DATABASE rc_after" -c "DROP DATABASE rc_before"
say "done"

# --- 3. the report ------------------------------------------------------------------------------
tps_med() { awk '{ print $1 }' "$tmp/$1.$2" | median; }
cpu_per() { awk '{ c += $5; t += $2 } END { if (c > 0 && t > 0) printf "%.0f", c / t; else print "n/a" }' "$tmp/$1.$2"; }
tps_list() { awk '{ printf "%s%.0f", (NR > 1 ? " " : ""), $1 }' "$tmp/$1.$2"; }
hot_share() { awk '{ u += $3; h += $4 } END { if (u > 0) printf "%.1f", 100 * h / u; else print "n/a" }' "$tmp/$1.$2"; }
# The rate kept: the median of each rep's after / before, so a drift of the machine's speed between
# reps (two shared cores) moves both sides of a pair alike.
pair_med() { paste -d' ' "$tmp/$1.before" "$tmp/$1.after" | awk '{ printf "%.4f\n", $(NF / 2 + 1) / $1 }' | median; }
pair_ratios() { paste -d' ' "$tmp/$1.before" "$tmp/$1.after" | awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $(NF / 2 + 1) / $1 }'; }
hot_list() { awk '{ printf "%s%s", (NR > 1 ? " " : ""), ($3 > 0 ? sprintf("%.0f", 100 * $4 / $3) : "-") }' "$tmp/$1.$2"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
size_of() { awk -v n="$2" '$1 == n { print $2 }' "$tmp/$1"; }
sum_kind() { awk -v k="$2" '$3 == k { s += $2 } END { print s + 0 }' "$tmp/$1"; }

server=$(val postgres "SHOW server_version" | cut -d' ' -f1)
echo "## Router cost: the router's own writes before and after \`migrate\` ($rows rows)"
echo
echo "rc_before: the router's table (migration 001: primary key on id), $rows rows of benchmarks/seed.sql (3 % failed),"
echo "plus the router's own index on (user_id, created_at), VACUUM ANALYZE. rc_after: a copy of it"
echo "(CREATE DATABASE ... TEMPLATE rc_before), migrated with $how (migrations here: $applied;"
echo "$(awk -v a="$mstart" -v b="$mend" 'BEGIN { printf "%.1f s", b - a }')). pgbench -n -M $protocol -c $clients -j $threads -T $secs, one statement per transaction; each"
echo "statement runs $reps time(s) on each database, alternately (before/after, then after/before). tps: median;"
echo "after / before: the median of each rep's ratio (the pairs' ratios in brackets);"
echo "HOT: n_tup_hot_upd / n_tup_upd of pg_stat_user_tables over all its runs (per run in brackets). Server CPU: the"
echo "exited backends' user + system time (the postmaster's cutime + cstime) over all runs / statements. The UPDATEs"
echo "pick a random row by id among the newest the INSERT runs wrote, as many in both databases, at most $recent:"
echo "$([ "$wmin" = "$wmax" ] && echo "$wmin" || echo "$wmin to $wmax") rows. PostgreSQL $server, $(nproc) cores shared by the server and pgbench;"
echo "load average (1 min) $load0 at the start, $load1 at the end of the runs (above $(nproc): other work shared the cores)."
echo
echo "| statement | tps before | tps after | after / before (per rep) | server CPU µs / statement, before → after | HOT before | HOT after | runs before: tps [HOT %] | runs after |"
echo "|---|---|---|---|---|---|---|---|---|"
for kind in $kinds; do
  b=$(tps_med "$kind" before); a=$(tps_med "$kind" after)
  if [ "$kind" = insert ]; then hb="—"; ha="—"; lb=$(tps_list "$kind" before); la=$(tps_list "$kind" after)
  else hb="$(hot_share "$kind" before) %"; ha="$(hot_share "$kind" after) %"
       lb="$(tps_list "$kind" before) [$(hot_list "$kind" before)]"; la="$(tps_list "$kind" after) [$(hot_list "$kind" after)]"; fi
  cb=$(cpu_per "$kind" before); ca=$(cpu_per "$kind" after)
  cr=""; [ "$cb" != n/a ] && [ "$ca" != n/a ] && cr=" (×$(ratio "$ca" "$cb"))"
  printf '| %s | %.0f | %.0f | %.2f (%s) | %s → %s%s | %s | %s | %s | %s |\n' "${label[$kind]}" "$b" "$a" "$(pair_med "$kind")" "$(pair_ratios "$kind")" \
         "$cb" "$ca" "$cr" "$hb" "$ha" "$lb" "$la"
done
echo
echo "Sizes (MB; main fork): at the start (rc_after just migrated) and after the runs above."
echo
echo "| relation | before, start | after, start | before, end | after, end |"
echo "|---|---|---|---|---|"
cell() { local v; v=$(size_of "$1" "$2"); if [ -n "$v" ]; then mb "$v"; else echo "—"; fi; }
names=$( { awk '$3 == "router" { print $1 }' "$tmp/sizes-after-start" | sort; awk '$3 == "sms-retry" { print $1 }' "$tmp/sizes-after-start" | sort; } )
for n in heap $names; do
  kind=$(awk -v n="$n" '$1 == n { print $3 }' "$tmp/sizes-after-start")
  tag=""; [ "$kind" = sms-retry ] && tag=" (sms-retry)"; [ "$kind" = router ] && tag=" (router)"
  echo "| $n$tag | $(cell sizes-before-start "$n") | $(cell sizes-after-start "$n") | $(cell sizes-before-end "$n") | $(cell sizes-after-end "$n") |"
done
for when in start end; do
  eval "rb_$when=$(sum_kind "sizes-before-$when" router) ra_$when=$(sum_kind "sizes-after-$when" router) sr_$when=$(sum_kind "sizes-after-$when" sms-retry)"
done
echo "| router's indexes, total | $(mb "$rb_start") | $(mb "$ra_start") | $(mb "$rb_end") | $(mb "$ra_end") |"
echo "| sms-retry's indexes, total | — | $(mb "$sr_start") | — | $(mb "$sr_end") |"
echo "| sms-retry's / router's indexes | — | $(ratio "$sr_start" "$ra_start") | — | $(ratio "$sr_end" "$ra_end") |"
echo
echo "Goals:"
goal() { if [ "$1" = 1 ]; then echo "- met: $2"; else echo "- **NOT met**: $2"; fi; }
r=$(printf '%.2f' "$(pair_med insert)")
goal "$(awk -v r="$r" 'BEGIN { print (r >= 0.90) }')" "INSERT keeps ≥ 90 % of its rate: $r (server CPU per statement $(cpu_per insert before) → $(cpu_per insert after) µs)"
for kind in update_time update_metadata; do
  r=$(printf '%.2f' "$(pair_med "$kind")")
  goal "$(awk -v r="$r" 'BEGIN { print (r >= 0.90) }')" "${label[$kind]} keeps ≥ 90 % of its rate: $r (server CPU per statement $(cpu_per "$kind" before) → $(cpu_per "$kind" after) µs)"
  hb=$(hot_share "$kind" before); ha=$(hot_share "$kind" after)
  goal "$(awk -v b="$hb" -v a="$ha" 'BEGIN { print (b - a <= 5) }')" \
       "${label[$kind]} keeps its HOT share within 5 points: $hb % → $ha % ($(awk -v b="$hb" -v a="$ha" 'BEGIN { printf "%+.1f", a - b }') points)"
done
r=$(ratio "$sr_start" "$ra_start")
goal "$(awk -v r="$r" 'BEGIN { print (r <= 0.5) }')" \
     "sms-retry's indexes add at most half of the table's index size: $(mb "$sr_start") MB on $(mb "$ra_start") MB = $r (after the runs: $(ratio "$sr_end" "$ra_end"))"
echo
echo "Whole run: $(( $(date +%s) - t0 )) s."
