#!/usr/bin/env bash
# Audit log at scale, as ratios against baselines measured in the same run:
#   1. removing 90-day-expired rows: mcp.cleanup_old_token_audit_logs('90 days') on the
#      partitioned log vs a plain DELETE … WHERE created_at < now() - '90 days' on an
#      unpartitioned copy of the same rows — time, WAL bytes (EXPLAIN (ANALYZE, WAL): the
#      statement's own WAL, not the concurrent stream's), table size after — with a concurrent
#      stream of single-row INSERTs into the same table, whose p50/p99 latency is compared
#      with the same stream when nothing else runs; then the steady state with whole days
#      (trim_boundary => false): the rest of the boundary day, and one whole day, each vs a
#      DELETE of the same rows;
#   2. token_audit_summary vs the plain 30-day aggregate over the raw log (and over the
#      unpartitioned copy), and their equality, before and after retention.
#
# Usage: bash bench/audit_bench.sh [ROWS] [DAYS]      (default 10000000 rows over 180 days)
# Builds and installs under the machine-wide install lock, starts a throwaway cluster with the
# library preloaded (so another checkout's install cannot swap it mid-run), then releases the
# lock. Needs about 1 GB of disk per million rows.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ROWS=${1:-${ROWS:-10000000}}
DAYS=${2:-${DAYS:-180}}
STREAM_CLIENTS=${STREAM_CLIENTS:-2}
INSTANCES=${INSTANCES:-2000}

mcp_cleanup_extra() { rm -f "${STREAM_FLAG:-}"; wait 2>/dev/null || true; }
mcp_prepare bench
STREAM_FLAG=$WORK/stream.run
mcp_cluster_start "$WORK/cluster" \
    "shared_preload_libraries = 'mcp_platform'" "mcp_platform.maintenance_interval = 0" \
    "shared_buffers = '1GB'" "work_mem = '64MB'" "maintenance_work_mem = '512MB'" \
    "max_wal_size = '50GB'" "checkpoint_timeout = '1h'" "log_min_messages = warning"
psql -X -q -c "CREATE EXTENSION mcp_platform"
flock -u 9   # the library is loaded in the postmaster and the install script was read

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now_s() { date +%s.%N; }

mcp_log "loading $ROWS rows over $DAYS days ($INSTANCES instances)"
q >/dev/null <<SQL
CREATE SCHEMA bench;
-- server-side time of one statement: planning + execution, in ms
CREATE FUNCTION bench.exec_ms(stmt text) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE p jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || stmt INTO p;
    RETURN round(((p->0->>'Planning Time')::numeric + (p->0->>'Execution Time')::numeric), 2);
END
\$\$;
-- median of n runs (after one warm-up run)
CREATE FUNCTION bench.median_ms(stmt text, n int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE t numeric[] := '{}';
BEGIN
    PERFORM bench.exec_ms(stmt);
    FOR i IN 1..n LOOP t := t || bench.exec_ms(stmt); END LOOP;
    RETURN (SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(t) AS x);
END
\$\$;
-- bytes of a table with its indexes and TOAST, all partitions included
CREATE FUNCTION bench.size(t regclass) RETURNS bigint LANGUAGE sql AS \$\$
    SELECT coalesce((SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_partition_tree(t) WHERE isleaf),
                    pg_total_relation_size(t))
\$\$;
-- the statement's own WAL bytes and its server time
CREATE FUNCTION bench.explain_wal(stmt text) RETURNS jsonb LANGUAGE plpgsql AS \$\$
DECLARE p jsonb;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, WAL, TIMING OFF, FORMAT JSON) ' || stmt INTO p;
    RETURN jsonb_build_object('wal_bytes', (p->0->'Plan'->>'WAL Bytes')::bigint,
                              'ms', (p->0->>'Execution Time')::numeric);
END
\$\$;
SELECT mcp.ensure_audit_partitions(now() - make_interval(days => $DAYS), now() + interval '7 days');
SQL
PER_DAY=$(( ROWS / DAYS ))
load_started=$(now_s)
for ((k = DAYS - 1; k >= 0; k--)); do
    q >/dev/null <<SQL
SELECT setseed(0.$(( (k * 7919) % 100000 + 1 )));
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, error_type, metadata, created_at)
SELECT md5('i' || inst)::uuid, md5('u' || (inst % 500))::uuid,
       (ARRAY['refresh', 'refresh', 'refresh', 'validate', 'validate', 'revoke', 'store_tokens', 'claim_refresh'])[1 + (r * 8)::int % 8],
       CASE WHEN r < 0.90 THEN 'success' WHEN r < 0.98 THEN 'failure' ELSE 'pending' END,
       (ARRAY['oauth', 'api_key', 'oauth', NULL])[1 + inst % 4],   -- one auth method per instance
       CASE WHEN r >= 0.90 AND r < 0.98 THEN 'invalid_grant' END,
       '{"source": "bench"}',
       now() - make_interval(days => $k + 1) + g.t * interval '1 day'
  FROM (SELECT (random() * $INSTANCES)::int AS inst, random() AS r, random() AS t
          FROM generate_series(1, $PER_DAY)) g
 ORDER BY g.t;   -- rows arrive in time order, as they do from log_token_operation
SQL
    if (( k % 30 == 0 )); then echo "  day -$k loaded ($(printf '%.0f' "$(echo "$(now_s) - $load_started" | bc)") s)"; fi
done
# today so far, and the unpartitioned copy with the same indexes
q >/dev/null <<SQL
CREATE TABLE bench.audit_plain (LIKE mcp.token_audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO bench.audit_plain SELECT * FROM mcp.token_audit_log;
ALTER TABLE bench.audit_plain ALTER audit_id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH 1000000000);
ALTER TABLE bench.audit_plain ADD PRIMARY KEY (user_id, audit_id, created_at);
CREATE INDEX ON bench.audit_plain (instance_id, created_at);
CREATE INDEX ON bench.audit_plain (user_id, created_at);
CREATE INDEX ON bench.audit_plain (operation);
CREATE INDEX ON bench.audit_plain (status);
CREATE INDEX ON bench.audit_plain (created_at);
SQL
echo "  loaded in $(printf '%.0f' "$(echo "$(now_s) - $load_started" | bc)") s: $(q -c "SELECT count(*) FROM mcp.token_audit_log") rows partitioned, $(q -c "SELECT count(*) FROM bench.audit_plain") unpartitioned"
rollup_ms=$(q -c "SELECT bench.exec_ms('SELECT mcp_internal.refresh_audit_rollup()')")
q -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
echo "  rollup of the last 31 days built in $rollup_ms ms ($(q -c "SELECT count(*) FROM mcp.token_audit_daily") rollup rows)"

# ---- 2. summary ----------------------------------------------------------------------------
mcp_log "token_audit_summary vs the plain 30-day aggregate"
PLAIN_AGG="SELECT l.instance_id, l.user_id, l.operation, l.method, count(*) AS total_operations,
  count(*) FILTER (WHERE l.status = 'success') AS success_count, count(*) FILTER (WHERE l.status = 'failure') AS failure_count,
  round(100.0 * count(*) FILTER (WHERE l.status = 'success') / count(*), 2) AS success_rate,
  min(l.created_at) AS first_operation_at, max(l.created_at) AS last_operation_at
  FROM %s l WHERE l.created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4"
plain_raw=$(printf "$PLAIN_AGG" mcp.token_audit_log)
plain_copy=$(printf "$PLAIN_AGG" bench.audit_plain)
summary_ms=$(q -c "SELECT bench.median_ms('SELECT * FROM mcp.token_audit_summary', 7)")
raw_ms=$(q -c "SELECT bench.median_ms(\$q\$$plain_raw\$q\$, 3)")
copy_ms=$(q -c "SELECT bench.median_ms(\$q\$$plain_copy\$q\$, 3)")
groups=$(q -c "SELECT count(*) FROM mcp.token_audit_summary")
# equal to the plain aggregate, and unchanged by retention (one transaction: one now(); rolled back)
equality=$(q <<SQL
BEGIN;
SELECT (SELECT count(*) FROM (SELECT * FROM mcp.token_audit_summary EXCEPT ALL $plain_raw) a)
     + (SELECT count(*) FROM ($plain_raw EXCEPT ALL SELECT * FROM mcp.token_audit_summary) b) AS differences \gset
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) AS before_md5 FROM mcp.token_audit_summary s \gset
SELECT mcp.cleanup_old_token_audit_logs('90 days') AS removed \gset
SELECT md5(string_agg(s::text, ',' ORDER BY s::text)) = :'before_md5' AS same FROM mcp.token_audit_summary s \gset
SELECT :differences || ' ' || :'same' || ' ' || :removed;
ROLLBACK;
SQL
)
read -r differences same_after_retention removed_in_check <<<"$equality"
echo "  summary groups: $groups; rows differing from the plain aggregate: $differences; identical after retention (removing $removed_in_check rows): $same_after_retention"

# ---- 1. retention with a concurrent insert stream ------------------------------------------
STREAM_SQL=$WORK/stream.sql
# runs the insert stream into table $1 in 2-second pgbench chunks while $STREAM_FLAG exists
stream() {
    local table=$1 prefix=$2 chunk=0
    printf "INSERT INTO %s (instance_id, user_id, operation, status, method) VALUES ('%s', '%s', 'refresh', 'success', 'oauth');\n" \
        "$table" "$(q -c "SELECT md5('i1')::uuid")" "$(q -c "SELECT md5('u1')::uuid")" > "$STREAM_SQL.$prefix"
    while [ -f "$STREAM_FLAG" ]; do
        chunk=$((chunk + 1))
        pgbench -n -c "$STREAM_CLIENTS" -j "$STREAM_CLIENTS" -T 2 -f "$STREAM_SQL.$prefix" -l \
            --log-prefix="$WORK/$prefix.$chunk" >/dev/null 2>&1 || true
    done
}
# latencies (ms) of stream transactions that completed in [from, to] (epoch seconds)
latencies() {
    cat "$WORK/$1".* 2>/dev/null | awk -v from="$2" -v to="$3" '{ t = $5 + $6 / 1e6; if (t >= from && t <= to) printf "%.3f\n", $3 / 1000 }' | sort -n
}
pct() {   # pct P < sorted values
    awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] }'
}
measure() {   # measure LABEL TABLE STATEMENT CUTOFF: runs STATEMENT with the stream going into TABLE
    # (CUTOFF: the SQL expression of the oldest time kept, with T0 for the statement's start)
    local label=$1 table=$2 stmt=$3 cutoff=$4
    touch "$STREAM_FLAG"
    stream "$table" "$label" & local pid=$!
    sleep 3
    local before_size t0 t1 result
    before_size=$(q -c "SELECT bench.size('$table')")
    t0=$(now_s)
    result=$(q -c "SELECT bench.explain_wal(\$q\$$stmt\$q\$)")
    t1=$(now_s)
    # rows older than the cutoff as of the statement's start (rows keep ageing afterwards)
    local left; left=$(q -c "SELECT count(*) FROM $table WHERE created_at < ${cutoff//T0/to_timestamp($t0)}")
    sleep 3
    rm -f "$STREAM_FLAG"; wait "$pid" || true
    local after_size; after_size=$(q -c "SELECT bench.size('$table')")
    local base during
    base=$(latencies "$label" 0 "$t0" | sed -n '1,$p')
    during=$(latencies "$label" "$t0" "$(echo "$t1 + 0.5" | bc)")
    echo "$label|$(echo "($t1 - $t0) * 1000" | bc | xargs printf '%.0f')|$(echo "$result" | sed -E 's/.*"wal_bytes": ([0-9]+).*/\1/')|$before_size|$after_size|$(echo "$base" | pct 50)|$(echo "$base" | pct 99)|$(echo "$during" | pct 50)|$(echo "$during" | pct 99)|$(echo "$during" | grep -c . || true)|$left"
}
mcp_log "retention: cleanup (partitioned) vs DELETE (unpartitioned), with $STREAM_CLIENTS concurrent insert streams"
expired_rows=$(q -c "SELECT count(*) FROM mcp.token_audit_log WHERE created_at < now() - interval '90 days'")
q -c "CHECKPOINT" >/dev/null
part=$(measure partitioned mcp.token_audit_log "SELECT mcp.cleanup_old_token_audit_logs('90 days')" "T0 - interval '90 days'")
q -c "CHECKPOINT" >/dev/null
plain=$(measure unpartitioned bench.audit_plain "DELETE FROM bench.audit_plain WHERE created_at < now() - interval '90 days'" "T0 - interval '90 days'")
# Whole days (trim_boundary => false), the steady state of mcp_platform.audit_retention_trim =
# off: (b) the rest of the boundary day the first run trimmed (its oldest day partition), and
# (c) the next day, whole (a partition whose count maintenance recorded), each against a
# DELETE of exactly the same rows (everything before the end of that day).
day_b=$(q -c "SELECT date_trunc('day', min(created_at), 'UTC') + interval '1 day' FROM mcp.token_audit_log")
day_c=$(q -c "SELECT '$day_b'::timestamptz + interval '1 day'")
rows_b=$(q -c "SELECT count(*) FROM mcp.token_audit_log WHERE created_at < '$day_b'")
rows_c=$(q -c "SELECT count(*) FROM mcp.token_audit_log WHERE created_at >= '$day_b' AND created_at < '$day_c'")
q -c "CHECKPOINT" >/dev/null
part1=$(measure partitioned_rest mcp.token_audit_log "SELECT mcp.cleanup_old_token_audit_logs(now() - '$day_b'::timestamptz, trim_boundary => false)" "'$day_b'::timestamptz")
q -c "CHECKPOINT" >/dev/null
plain1=$(measure unpartitioned_rest bench.audit_plain "DELETE FROM bench.audit_plain WHERE created_at < '$day_b'" "'$day_b'::timestamptz")
q -c "CHECKPOINT" >/dev/null
part2=$(measure partitioned_day mcp.token_audit_log "SELECT mcp.cleanup_old_token_audit_logs(now() - '$day_c'::timestamptz, trim_boundary => false)" "'$day_c'::timestamptz")
q -c "CHECKPOINT" >/dev/null
plain2=$(measure unpartitioned_day bench.audit_plain "DELETE FROM bench.audit_plain WHERE created_at < '$day_c'" "'$day_c'::timestamptz")

mb() { echo "scale=1; $1 / 1048576" | bc; }
ratio() { if [ "$2" = 0 ] || [ "$2" = "" ]; then echo "n/a"; else echo "scale=1; $1 / $2" | bc; fi; }
# retention_table TITLE OURS PARTITIONED_RESULT UNPARTITIONED_RESULT: one comparison table
retention_table() {
    local p_ms p_wal p_before p_after p_b50 p_b99 p_d50 p_d99 p_n p_left
    local d_ms d_wal d_before d_after d_b50 d_b99 d_d50 d_d99 d_n d_left
    IFS='|' read -r _ p_ms p_wal p_before p_after p_b50 p_b99 p_d50 p_d99 p_n p_left <<<"$3"
    IFS='|' read -r _ d_ms d_wal d_before d_after d_b50 d_b99 d_d50 d_d99 d_n d_left <<<"$4"
    cat <<EOF3
$1 | $2 | DELETE (unpartitioned) | ratio
-------------------------------+-----------------------+------------------------+-------
wall time incl. commit         | $p_ms ms | $d_ms ms | $(ratio "$d_ms" "$p_ms")x faster
WAL bytes of the statement     | $p_wal | $d_wal | $(ratio "$d_wal" "$p_wal")x less
table size before -> after     | $(mb "$p_before") -> $(mb "$p_after") MB | $(mb "$d_before") -> $(mb "$d_after") MB |
expired rows left              | $p_left | $d_left |
insert p50 / p99, stream alone | $p_b50 / $p_b99 ms | $d_b50 / $d_b99 ms |
insert p50 / p99, during       | $p_d50 / $p_d99 ms ($p_n inserts) | $d_d50 / $d_d99 ms ($d_n inserts) |

EOF3
}

# summary after retention, too (the streams added rows to today's partition, read raw)
summary_after_ms=$(q -c "SELECT bench.median_ms('SELECT * FROM mcp.token_audit_summary', 7)")
differences_after=$(q -c "SELECT (SELECT count(*) FROM (SELECT * FROM mcp.token_audit_summary EXCEPT ALL $plain_raw) a) + (SELECT count(*) FROM ($plain_raw EXCEPT ALL SELECT * FROM mcp.token_audit_summary) b)")

mcp_log "results ($ROWS rows over $DAYS days; $expired_rows rows older than 90 days)"
retention_table "retention (90 days)           " "cleanup (partitioned)" "$part" "$plain"
retention_table "rest of the boundary day, whole days ($rows_b rows)" "cleanup(trim_boundary => false)" "$part1" "$plain1"
retention_table "one whole day ($rows_c rows)  " "cleanup(trim_boundary => false)" "$part2" "$plain2"
cat <<EOF2
summary (30-day window, $groups groups)       | time
----------------------------------------------+---------
token_audit_summary                           | $summary_ms ms
plain aggregate, raw partitioned log          | $raw_ms ms  ($(ratio "$raw_ms" "$summary_ms")x)
plain aggregate, unpartitioned copy           | $copy_ms ms  ($(ratio "$copy_ms" "$summary_ms")x)
token_audit_summary after retention           | $summary_after_ms ms
rows differing from the plain aggregate       | $differences before, $differences_after after retention
identical result before/after retention (same now()) | $same_after_retention
rollup refresh of 31 days                     | $rollup_ms ms
EOF2
