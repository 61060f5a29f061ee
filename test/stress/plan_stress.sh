#!/usr/bin/env bash
# Stress test of plan-limit enforcement, run by scripts/test.sh against its running
# throwaway cluster (PGHOST/PGPORT set): pgbench with 16 clients hammers one free user
# (limit 1) with every activation path — create, plain insert, reactivation, renewal,
# instances that go stale within milliseconds, deactivation, deletion, expiry — at READ
# COMMITTED, REPEATABLE READ and SERIALIZABLE in turn. Every transaction re-checks that the
# user never holds more than one active instance (any violation aborts pgbench); afterwards
# the user has at most one and mcp.verify_counters() is empty.
#   STRESS_SECONDS (default 10) per isolation level, STRESS_CLIENTS (default 16).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_LEVEL=${STRESS_SECONDS:-10}
CLIENTS=${STRESS_CLIENTS:-16}
DB=mcp_plan_stress
USER_ID=00000000-0000-0000-0000-00000000570f
WORK=$(mktemp -d /tmp/mcp_plan_stress.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

psql -qX -v ON_ERROR_STOP=1 -d postgres <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $DB;
CREATE DATABASE $DB;
SQL
psql -qX -v ON_ERROR_STOP=1 -d $DB <<SQL
CREATE EXTENSION mcp_platform;
DO \$\$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mcp_plan_stress') THEN
        CREATE ROLE mcp_plan_stress LOGIN IN ROLE mcp_app;
    END IF;
END \$\$;
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('github', 'GitHub', 7001, 'api_key'), ('gmail', 'Gmail', 7002, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('$USER_ID', 'stress@example.com');
-- One random operation on the user's instances, then the invariant. MC001 (the expected
-- refusal) and 42501 (renewing an instance another client just deleted) are swallowed;
-- 40001 propagates (pgbench counts it as a failed transaction).
CREATE FUNCTION public.stress_op(op integer) RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE
    target uuid;
    active_now bigint;
BEGIN
    PERFORM set_config('mcp.user_id', '$USER_ID', true);
    BEGIN
        CASE op
        WHEN 1, 2 THEN PERFORM mcp.create_instance('github');
        WHEN 3 THEN PERFORM mcp.create_instance('gmail', NULL, clock_timestamp() + interval '20 milliseconds');
        WHEN 4 THEN
            INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id)
            SELECT '$USER_ID', mcp_service_id FROM mcp.mcp_table WHERE mcp_service_name = 'gmail';
        WHEN 5 THEN
            UPDATE mcp.mcp_service_table SET status = 'active'
             WHERE instance_id = (SELECT instance_id FROM mcp.mcp_service_table
                                   WHERE status <> 'active' ORDER BY random() LIMIT 1);
        WHEN 6 THEN
            SELECT instance_id INTO target FROM mcp.mcp_service_table ORDER BY random() LIMIT 1;
            IF target IS NOT NULL THEN
                PERFORM mcp.renew_instance(target, now() + interval '1 second' * (1 + op));
            END IF;
        WHEN 7 THEN
            UPDATE mcp.mcp_service_table SET status = 'inactive'
             WHERE instance_id = (SELECT instance_id FROM mcp.mcp_service_table
                                   WHERE status = 'active' LIMIT 1);
        WHEN 8 THEN
            DELETE FROM mcp.mcp_service_table
             WHERE instance_id = (SELECT instance_id FROM mcp.mcp_service_table ORDER BY random() LIMIT 1);
        WHEN 9 THEN PERFORM mcp.expire_instances();
        ELSE
            -- an active instance goes stale (its expiry passes; no job marks it)
            UPDATE mcp.mcp_service_table SET expires_at = now() - interval '1 second'
             WHERE instance_id = (SELECT instance_id FROM mcp.mcp_service_table
                                   WHERE status = 'active' LIMIT 1);
        END CASE;
    EXCEPTION WHEN SQLSTATE 'MC001' OR SQLSTATE '42501' THEN
        NULL;  -- refused, or the instance picked was deleted meanwhile
    END;
    SELECT count(*) INTO active_now FROM mcp.mcp_service_table WHERE status = 'active';
    IF active_now > 1 THEN
        RAISE EXCEPTION 'plan limit broken: % active instances for a free user', active_now;
    END IF;
    RETURN 'ok';
END
\$f\$;
GRANT EXECUTE ON FUNCTION public.stress_op(integer) TO mcp_plan_stress;
SQL

cat > "$WORK/ops.sql" <<'EOF2'
\set op random(1, 10)
SELECT public.stress_op(:op);
EOF2

status=0
for level in 'read committed' 'repeatable read' 'serializable'; do
    echo "plan stress: $CLIENTS clients, ${SECONDS_PER_LEVEL}s, $level"
    rc=0
    PGOPTIONS="-c default_transaction_isolation=${level// /\\ }" \
        pgbench -n -U mcp_plan_stress -c "$CLIENTS" -j 2 -T "$SECONDS_PER_LEVEL" -f "$WORK/ops.sql" \
        --failures-detailed "$DB" >"$WORK/pgbench.log" 2>&1 || rc=$?
    grep -E 'processed|failed|serialization|aborted|tps' "$WORK/pgbench.log" | grep -v 'without initial' || true
    if [ "$rc" -ne 0 ] || grep -q 'plan limit broken' "$WORK/pgbench.log"; then
        echo "plan stress FAILED at $level (pgbench exit $rc)"; tail -20 "$WORK/pgbench.log"; status=1
    fi
    result=$(psql -qAtX -d $DB -c "
        SELECT (SELECT count(*) FROM mcp.mcp_service_table WHERE user_id = '$USER_ID' AND status = 'active')
               || ' ' || (SELECT count(*) FROM mcp.verify_counters())
               || ' ' || (SELECT count(*) FROM mcp.mcp_service_table WHERE user_id = '$USER_ID')")
    read -r active drift total <<<"$result"
    echo "  after: $active active of $total instances, $drift counter rows differing from the truth"
    if [ "$active" -gt 1 ] || [ "$drift" -ne 0 ]; then
        echo "plan stress FAILED at $level: active=$active drift=$drift"
        psql -X -d $DB -c "SELECT * FROM mcp.verify_counters()"; status=1
    fi
done
psql -qX -d postgres -c "DROP DATABASE $DB" -c "DROP ROLE mcp_plan_stress"
[ "$status" -eq 0 ] && echo "plan stress: ok"
exit "$status"
