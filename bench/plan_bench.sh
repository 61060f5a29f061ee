#!/usr/bin/env bash
# Benchmark of plan-limit enforcement, on a throwaway cluster, printing ratios
# against baselines measured in the same run (medians of ROUNDS runs of DURATION seconds,
# configurations interleaved round by round):
#   1. instance creation, 8 clients, many users on pro plans: the C trigger vs the same INSERT
#      with the trigger disabled vs a correct PL/pgSQL twin of the trigger
#   2. the hot user: every client creates instances for the same (pro) user
#   3. mcp.record_usage vs a plain UPDATE ... SET usage_count = usage_count + 1
#   4. instance creation for one service by many users vs each client on its own service
# Every transaction is what the backend sends: BEGIN; set_config('mcp.user_id', ...); the
# statement; COMMIT — as a member of mcp_app (RLS applies), with prepared statements.
#   bash bench/plan_bench.sh            (ROUNDS=5 DURATION=5 CLIENTS=8 by default)
# Builds and installs the extension under the machine-wide install lock and holds it for the
# run, so no other checkout replaces the library underneath.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
CLIENTS=${CLIENTS:-8}
USERS=${USERS:-2000}
PARTS=${PARTS:-create hot service usage}   # a subset, for quick experiments
has() { [[ " $PARTS " == *" $1 "* ]]; }

mcp_prepare bench >/dev/null
mcp_cluster_start "$WORK/cluster" "shared_buffers = 256MB" "max_wal_size = 2GB" \
    "log_min_messages = warning" "autovacuum_naptime = 10s"

DB=postgres
psql -qX -v ON_ERROR_STOP=1 -d $DB <<SQL
CREATE EXTENSION mcp_platform;
CREATE ROLE mcp_bench LOGIN IN ROLE mcp_app;
-- the plain-UPDATE baseline is what a backend owning the usage column would write by hand
-- (mcp_app itself may not write it: mcp.record_usage does)
GRANT UPDATE (usage_count) ON mcp.mcp_service_table TO mcp_bench;
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
SELECT 'svc' || i, 'Service ' || i, 7000 + i, 'api_key' FROM generate_series(1, 16) i;
-- user i has the id 00000000-0000-0000-0000-<i, 12 digits>
INSERT INTO mcp.users (id, email)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'user' || i || '@example.com'
  FROM generate_series(1, $USERS) i;
DO \$\$ BEGIN PERFORM mcp.set_plan(id, 'pro') FROM mcp.users; END \$\$;
CREATE TABLE public.bench_service (n integer PRIMARY KEY, id uuid NOT NULL);
INSERT INTO public.bench_service SELECT row_number() OVER (ORDER BY mcp_service_name COLLATE "C"), mcp_service_id FROM mcp.mcp_table;
GRANT SELECT ON public.bench_service TO mcp_bench;

-- The PL/pgSQL twin of mcp_internal.enforce_plan_limit() for inserts: the service must be active, then
-- the same conditional UPDATE of the plan row, the same expiry sweep and retry, MC001/MC002.
-- SECURITY DEFINER (mcp_app cannot write the counter) with a pinned search_path, as such a
-- function must be.
CREATE FUNCTION public.plan_limit_twin() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS \$\$
DECLARE
    ok boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM mcp.mcp_table t WHERE t.mcp_service_id = NEW.mcp_service_id AND t.is_active) THEN
        RAISE EXCEPTION 'service is inactive' USING ERRCODE = 'MC002';
    END IF;
    IF NEW.status <> 'active' THEN
        RETURN NULL;
    END IF;
    FOR attempt IN 1..2 LOOP
        UPDATE mcp.user_plans p SET active_instances = p.active_instances + 1
         WHERE p.user_id = NEW.user_id
           AND CASE WHEN p.plan_type = 'pro' AND (p.expires_at IS NULL OR p.expires_at > now())
                    THEN p.max_instances IS NULL OR p.active_instances + 1 <= p.max_instances
                    ELSE p.active_instances + 1 <= 1 END;
        ok := FOUND;
        EXIT WHEN ok OR attempt = 2;
        WITH swept AS (
            UPDATE mcp.mcp_service_table s SET status = 'expired'
             WHERE s.user_id = NEW.user_id AND s.status = 'active' AND s.expires_at <= now()
               AND s.instance_id IN (SELECT x.instance_id FROM mcp.mcp_service_table x
                                      WHERE x.user_id = NEW.user_id AND x.status = 'active'
                                        AND x.expires_at <= now() AND x.instance_id <> NEW.instance_id
                                        FOR NO KEY UPDATE SKIP LOCKED)
            RETURNING 1)
        UPDATE mcp.user_plans p SET active_instances = p.active_instances - (SELECT count(*) FROM swept)
         WHERE p.user_id = NEW.user_id;
    END LOOP;
    IF NOT ok THEN
        RAISE EXCEPTION 'plan limit reached' USING ERRCODE = 'MC001';
    END IF;
    RETURN NULL;
END
\$\$;
CREATE TRIGGER plan_limit_twin AFTER INSERT ON mcp.mcp_service_table
    FOR EACH ROW EXECUTE FUNCTION public.plan_limit_twin();
ALTER TABLE mcp.mcp_service_table DISABLE TRIGGER plan_limit_twin;
SQL

# ---- pgbench scripts ----------------------------------------------------------------------
# create_script NAME USER SERVICE: a pgbench script in which user number USER creates an
# instance of bench service number SERVICE (pgbench expressions)
create_script() {
    cat >"$WORK/$1.sql" <<EOF
\set u $2
\set s $3
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'), true);
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id)
VALUES (('00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'))::uuid, (SELECT id FROM public.bench_service WHERE n = :s));
END;
EOF
}
create_script create_many "random(1, $USERS)" "random(1, 16)"
create_script create_hot 1 "random(1, 16)"
create_script create_same_service "random(1, $USERS)" 1
create_script create_own_service "random(1, $USERS)" ":client_id + 1"
# instance j (1..20000) belongs to user 1 + j % USERS and has the id 00000000-0000-0000-0001-<j>
cat >"$WORK/record_usage.sql" <<EOF
\set j random(1, 20000)
\set u 1 + :j % $USERS
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'), true);
SELECT mcp.record_usage(('00000000-0000-0000-0001-' || lpad(:j::text, 12, '0'))::uuid);
END;
EOF
cat >"$WORK/plain_update.sql" <<EOF
\set j random(1, 20000)
\set u 1 + :j % $USERS
BEGIN;
SELECT set_config('mcp.user_id', '00000000-0000-0000-0000-' || lpad(:u::text, 12, '0'), true);
UPDATE mcp.mcp_service_table SET usage_count = usage_count + 1
 WHERE instance_id = ('00000000-0000-0000-0001-' || lpad(:j::text, 12, '0'))::uuid;
END;
EOF

sql() { psql -qAtX -v ON_ERROR_STOP=1 -d $DB -c "$1"; }
# which enforcement is installed: c | none | twin
use_triggers() {
    local c=DISABLE twin=DISABLE
    case $1 in c) c=ENABLE ;; twin) twin=ENABLE ;; esac
    sql "ALTER TABLE mcp.mcp_service_table $c TRIGGER mcp_service_table_plan_limit_insert;
         ALTER TABLE mcp.mcp_service_table $c TRIGGER mcp_service_table_plan_limit_update;
         ALTER TABLE mcp.mcp_service_table $c TRIGGER mcp_service_table_plan_limit_delete;
         ALTER TABLE mcp.mcp_service_table $twin TRIGGER plan_limit_twin;"
}
reset_instances() {
    sql "SET client_min_messages = warning; TRUNCATE mcp.mcp_service_table CASCADE;
         UPDATE mcp.user_plans SET active_instances = 0 WHERE active_instances <> 0;"
    sql "VACUUM ANALYZE mcp.user_plans, mcp.mcp_service_table"
    sql "CHECKPOINT"
}
# run NAME SCRIPT: one pgbench run; appends its tps to $WORK/NAME.tps
run() {
    local name=$1 script=$2 out
    out=$(pgbench -n -M prepared -U mcp_bench -c "$CLIENTS" -j 2 -T "$DURATION" -f "$script" $DB 2>&1) ||
        { echo "$name:"; echo "$out" | grep -m3 -i error; return 1; }
    echo "$out" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p' >>"$WORK/$name.tps"
    if echo "$out" | grep -q 'number of failed transactions: [1-9]'; then echo "$name: failed transactions"; echo "$out" | tail -5; fi
}
median() { [ -f "$WORK/$1.tps" ] || { echo 0; return; }; sort -n "$WORK/$1.tps" | awk '{a[NR]=$1} END {printf "%.0f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "plan_bench: $CLIENTS clients, $ROUNDS rounds of ${DURATION}s, $USERS users, $(nproc) CPUs"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS"
    if has create; then
        for variant in c none twin; do
            use_triggers $variant; reset_instances
            run "create_$variant" "$WORK/create_many.sql"
        done
    fi
    if has hot; then
        for variant in c none; do
            use_triggers $variant; reset_instances
            run "hot_$variant" "$WORK/create_hot.sql"
        done
    fi
    if has service; then
        use_triggers c
        reset_instances; run same_service "$WORK/create_same_service.sql"
        reset_instances; run own_service "$WORK/create_own_service.sql"
    fi
done

# record_usage: 20000 instances, created once with enforcement on
use_triggers c; reset_instances
if has usage; then
sql "INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
     SELECT ('00000000-0000-0000-0001-' || lpad(j::text, 12, '0'))::uuid,
            ('00000000-0000-0000-0000-' || lpad((1 + j % $USERS)::text, 12, '0'))::uuid,
            (SELECT id FROM public.bench_service WHERE n = 1 + j % 16)
       FROM generate_series(1, 20000) j"
sql "VACUUM ANALYZE mcp.mcp_service_table"
for r in $(seq 1 "$ROUNDS"); do
    run record_usage "$WORK/record_usage.sql"
    run plain_update "$WORK/plain_update.sql"
done
fi
drift=$(sql "SELECT count(*) FROM mcp.verify_counters()")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0) print "-"; else printf "%.2f", a / b}'; }
c=$(median create_c); none=$(median create_none); twin=$(median create_twin)
hc=$(median hot_c); hn=$(median hot_none)
ru=$(median record_usage); pu=$(median plain_update)
ss=$(median same_service); os=$(median own_service)
echo
echo "| measurement (median tps) | tps | baseline | baseline tps | ratio | target |"
echo "|---|---:|---|---:|---:|---|"
echo "| create, C trigger | $c | no trigger | $none | $(ratio "$c" "$none") | >= 0.85 |"
echo "| create, C trigger | $c | PL/pgSQL twin | $twin | $(ratio "$c" "$twin") | > 1 |"
echo "| create, hot user, C trigger | $hc | hot user, no trigger | $hn | $(ratio "$hc" "$hn") | (reported) |"
echo "| mcp.record_usage | $ru | plain UPDATE usage_count + 1 | $pu | $(ratio "$pu" "$ru") (time ratio) | <= 1.5 |"
echo "| create, one service, many users | $ss | each client its own service | $os | $(ratio "$ss" "$os") | >= 0.80 |"
echo
echo "counter rows differing from the truth after the run: $drift"
