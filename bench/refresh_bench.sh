#!/usr/bin/env bash
# Refresh workers: claim + complete throughput of the extension against the floor a
# hand-written queue would reach, side by side (medians of ROUNDS runs, interleaved).
#   mcp    SELECT mcp.complete_refresh(…) FROM mcp.claim_refreshes(100) — a lease per row, the
#          client secret and refresh token decrypted, the new access token sealed, state,
#          schedule and two audit rows (claim, refresh) written (the instance's row is left alone)
#   floor  the same two steps as plain SQL functions on an equivalent unencrypted table (the
#          credentials table's columns, indexes and constraints, CREATE TABLE … LIKE …
#          INCLUDING ALL, secrets as plaintext bytes): WITH due AS (SELECT … FOR UPDATE SKIP
#          LOCKED LIMIT 100) UPDATE … RETURNING, then one UPDATE per row (no encryption, no
#          audit, no checks, no triggers); the target's baseline
#   queue  the same on a minimal queue table (key, due and lease indexes only, no
#          constraints): what a queue built for nothing else costs
# CREDENTIALS credentials (in USERS users), DUE of them due; each run drains the DUE ones with
# 1, 4 and 8 workers (pgbench clients, as a member of mcp_worker for mcp) in batches of 100.
# Prints credentials refreshed per second and the ratio mcp / floor (target >= 0.5), and the
# plan of the due scan at full size.
#   bash bench/refresh_bench.sh        (CREDENTIALS=1000000 DUE=10000 USERS=10000 ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
CREDENTIALS=${CREDENTIALS:-1000000}
DUE=${DUE:-10000}
USERS=${USERS:-10000}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1 4 8}
PER_USER=$(( (CREDENTIALS + USERS - 1) / USERS ))

mcp_prepare refresh_bench >/dev/null
KEYRING="$WORK/cluster/keyring"
mcp_cluster_start "$WORK/cluster" "mcp_platform.key_file = '$KEYRING'" "shared_buffers = 512MB" \
    "max_wal_size = 4GB" "log_min_messages = warning" "max_connections = 40"
mcp_write_keyring "$KEYRING" "1 $(mcp_random_key)"
mcp_cluster_reload
DB=postgres
echo "refresh_bench: $CREDENTIALS credentials ($USERS users), $DUE due, $ROUNDS rounds, $(nproc) CPUs"
echo "building the data set ..."
psql -qX -v ON_ERROR_STOP=1 -d $DB <<SQL >/dev/null
CREATE EXTENSION mcp_platform;
CREATE ROLE bench_worker LOGIN IN ROLE mcp_worker;
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type)
VALUES ('00000000-0000-0000-0000-0000000000c1', 'bench_oauth', 'OAuth', 7001, 'oauth');
INSERT INTO mcp.users (id, email)
SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'u' || i || '@bench.example'
  FROM generate_series(1, $USERS) i;
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL;
-- credential n: instance 00000000-0000-0000-0001-<n> of user 1 + (n - 1) / PER_USER
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, status)
SELECT ('00000000-0000-0000-0001-' || lpad(n::text, 12, '0'))::uuid,
       ('00000000-0000-0000-0000-' || lpad((1 + (n - 1) / $PER_USER)::text, 12, '0'))::uuid,
       '00000000-0000-0000-0000-0000000000c1', 'inactive'
  FROM generate_series(1, $CREDENTIALS) n;
-- sealed as the API seals them; the first DUE credentials are due (over the last hour), the
-- others later (within a day)
INSERT INTO mcp.mcp_credentials (user_id, instance_id, client_id, client_secret, access_token, refresh_token,
                                 token_expires_at, oauth_status, oauth_completed_at, key_version,
                                 tokens_stored_at, refresh_due_at, last_success_at)
SELECT s.user_id, s.instance_id, 'client-bench',
       mcp_internal.seal_field(s.user_id, s.instance_id, 'client_secret', 'secret-' || md5(s.instance_id::text)),
       mcp_internal.seal_field(s.user_id, s.instance_id, 'access_token', 'access-' || md5(s.instance_id::text) || md5(s.user_id::text)),
       mcp_internal.seal_field(s.user_id, s.instance_id, 'refresh_token', 'refresh-' || md5(s.instance_id::text)),
       now() + interval '1 hour', 'completed', now(), 1, now(), d.due, now()
  FROM mcp.mcp_service_table s,
       LATERAL (SELECT CASE WHEN right(s.instance_id::text, 12)::bigint <= $DUE
                            THEN now() - random() * interval '1 hour'
                            ELSE now() + interval '1 minute' + random() * interval '1 day' END AS due) d;
CREATE TABLE bench_due AS
SELECT user_id, instance_id FROM mcp.mcp_credentials WHERE refresh_due_at <= now();
-- the floor: the same queue, unencrypted, without the extension
CREATE TABLE bench_queue (
    id bigint PRIMARY KEY, user_id uuid NOT NULL, instance_id uuid NOT NULL, client_id text,
    client_secret text, access_token text, refresh_token text, token_expires_at timestamptz,
    token_scope text, refresh_state text NOT NULL DEFAULT 'ok', lease uuid, claimed_until timestamptz,
    due_at timestamptz, failures integer NOT NULL DEFAULT 0, last_success_at timestamptz
) WITH (fillfactor = 50);
INSERT INTO bench_queue (id, user_id, instance_id, client_id, client_secret, access_token, refresh_token,
                         token_expires_at, due_at, last_success_at)
SELECT right(c.instance_id::text, 12)::bigint, c.user_id, c.instance_id, c.client_id,
       'secret-' || md5(c.instance_id::text), 'access-' || md5(c.instance_id::text) || md5(c.user_id::text),
       'refresh-' || md5(c.instance_id::text), c.token_expires_at, c.refresh_due_at, now()
  FROM mcp.mcp_credentials c;
-- the equivalent table: the credentials table's shape, unencrypted
CREATE TABLE bench_eq (LIKE mcp.mcp_credentials INCLUDING ALL);
INSERT INTO bench_eq (credential_id, user_id, instance_id, client_id, client_secret, access_token, refresh_token,
                      token_expires_at, oauth_status, oauth_completed_at, key_version, tokens_stored_at,
                      refresh_due_at, last_success_at)
SELECT c.credential_id, c.user_id, c.instance_id, c.client_id,
       convert_to('secret-' || md5(c.instance_id::text), 'UTF8'),
       convert_to('access-' || md5(c.instance_id::text) || md5(c.user_id::text), 'UTF8'),
       convert_to('refresh-' || md5(c.instance_id::text), 'UTF8'),
       c.token_expires_at, c.oauth_status, c.oauth_completed_at, c.key_version, c.tokens_stored_at,
       c.refresh_due_at, c.last_success_at
  FROM mcp.mcp_credentials c;
CREATE FUNCTION bench_eq_claim(n integer) RETURNS TABLE (lease uuid, client_secret text, refresh_token text)
    LANGUAGE sql AS \$\$
    WITH due AS (SELECT q.user_id, q.credential_id FROM bench_eq q WHERE q.refresh_due_at <= now()
                  ORDER BY q.refresh_due_at LIMIT n FOR UPDATE SKIP LOCKED)
    UPDATE bench_eq q SET refresh_lease = gen_random_uuid(), refresh_claimed_until = now() + interval '60 seconds',
                          refresh_due_at = now() + interval '60 seconds'
      FROM due WHERE q.user_id = due.user_id AND q.credential_id = due.credential_id
    RETURNING q.refresh_lease, convert_from(q.client_secret, 'UTF8'), convert_from(q.refresh_token, 'UTF8') \$\$;
CREATE FUNCTION bench_eq_complete(l uuid, access text, expires timestamptz) RETURNS void
    LANGUAGE sql AS \$\$
    UPDATE bench_eq SET access_token = convert_to(access, 'UTF8'), token_expires_at = expires,
                        refresh_state = 'ok', refresh_lease = NULL, refresh_claimed_until = NULL,
                        refresh_failures = 0, failure_days = 0, next_attempt_at = NULL,
                        last_success_at = now(), tokens_stored_at = now(),
                        refresh_due_at = expires - interval '15 minutes'
     WHERE refresh_lease = l \$\$;
CREATE INDEX bench_queue_due ON bench_queue (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX bench_queue_lease ON bench_queue (lease) WHERE lease IS NOT NULL;
CREATE FUNCTION bench_claim(n integer) RETURNS TABLE (lease uuid, id bigint, client_secret text, refresh_token text)
    LANGUAGE sql AS \$\$
    WITH due AS (SELECT q.id FROM bench_queue q WHERE q.due_at <= now() ORDER BY q.due_at LIMIT n
                    FOR UPDATE SKIP LOCKED)
    UPDATE bench_queue q SET lease = gen_random_uuid(), claimed_until = now() + interval '60 seconds',
                             due_at = now() + interval '60 seconds'
      FROM due WHERE q.id = due.id
    RETURNING q.lease, q.id, q.client_secret, q.refresh_token \$\$;
CREATE FUNCTION bench_complete(l uuid, access text, expires timestamptz) RETURNS void
    LANGUAGE sql AS \$\$
    UPDATE bench_queue SET access_token = access, token_expires_at = expires, lease = NULL, claimed_until = NULL,
                           refresh_state = 'ok', failures = 0, last_success_at = now(),
                           due_at = expires - interval '15 minutes'
     WHERE lease = l \$\$;
GRANT SELECT, UPDATE ON bench_queue TO bench_worker;
VACUUM ANALYZE;
SQL

echo
echo "the due scan at $(psql -qXAt -d $DB -c 'SELECT count(*) FROM mcp.mcp_credentials') credentials:"
psql -qXAt -d $DB <<'SQL'
EXPLAIN (COSTS OFF)
SELECT c.user_id, c.credential_id, c.refresh_due_at FROM mcp.mcp_credentials c
 WHERE c.refresh_due_at <= now() AND c.key_version IS DISTINCT FROM -1
 ORDER BY c.refresh_due_at LIMIT 100 FOR UPDATE OF c SKIP LOCKED;
SQL

cat >"$WORK/mcp.sql" <<'SQL'
SELECT count(mcp.complete_refresh(c.lease_token, 'access-new-' || md5(c.refresh_token), NULL, now() + interval '1 hour'))
  FROM mcp.claim_refreshes(100) c;
SQL
cat >"$WORK/floor.sql" <<'SQL'
SELECT count(bench_eq_complete(c.lease, 'access-new-' || md5(c.refresh_token), now() + interval '1 hour'))
  FROM bench_eq_claim(100) c;
SQL
cat >"$WORK/queue.sql" <<'SQL'
SELECT count(bench_complete(c.lease, 'access-new-' || md5(c.refresh_token), now() + interval '1 hour'))
  FROM bench_claim(100) c;
SQL

reset() {  # the DUE credentials due again, nothing leased; both tables vacuumed
    psql -qX -v ON_ERROR_STOP=1 -d $DB <<'SQL' >/dev/null
UPDATE mcp.mcp_credentials c SET refresh_due_at = now() - random() * interval '1 hour', refresh_lease = NULL,
       refresh_claimed_until = NULL
  FROM bench_due d WHERE c.user_id = d.user_id AND c.instance_id = d.instance_id;
UPDATE bench_queue q SET due_at = now() - random() * interval '1 hour', lease = NULL, claimed_until = NULL
  FROM bench_due d WHERE q.instance_id = d.instance_id;
UPDATE bench_eq q SET refresh_due_at = now() - random() * interval '1 hour', refresh_lease = NULL,
       refresh_claimed_until = NULL
  FROM bench_due d WHERE q.user_id = d.user_id AND q.instance_id = d.instance_id;
VACUUM ANALYZE mcp.mcp_credentials, mcp.mcp_service_table, bench_queue, bench_eq;
SQL
}

run() {  # run NAME WORKERS: drain the due set; appends credentials per second to NAME-WORKERS.rate
    local name=$1 n=$2 user=bench_worker t0 t1 done_rows batches
    [ "$name" != mcp ] && user=postgres
    batches=$(( (DUE / 100 + n - 1) / n + 1 ))
    reset
    t0=$(date +%s.%N)
    pgbench -n -M prepared -U $user -c "$n" -j "$(( n < 2 ? n : 2 ))" -t "$batches" -f "$WORK/$name.sql" $DB \
        >"$WORK/pgbench.log" 2>&1 || { grep -m3 -i error "$WORK/pgbench.log"; return 1; }
    t1=$(date +%s.%N)
    if [ "$name" = mcp ]; then
        done_rows=$(psql -qXAt -d $DB -c "SELECT count(*) FROM mcp.mcp_credentials c JOIN bench_due d USING (user_id, instance_id) WHERE c.refresh_due_at > now() + interval '30 minutes'")
    elif [ "$name" = floor ]; then
        done_rows=$(psql -qXAt -d $DB -c "SELECT count(*) FROM bench_eq q JOIN bench_due d USING (user_id, instance_id) WHERE q.refresh_due_at > now() + interval '30 minutes'")
    else
        done_rows=$(psql -qXAt -d $DB -c "SELECT count(*) FROM bench_queue q JOIN bench_due d USING (instance_id) WHERE q.due_at > now() + interval '30 minutes'")
    fi
    awk -v r="$done_rows" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f\n", r / (b - a)}' >>"$WORK/$name-$n.rate"
    [ "$done_rows" -eq "$DUE" ] || echo "  ($name, $n workers: $done_rows of $DUE refreshed)"
}
median() { sort -n "$WORK/$1.rate" | awk '{a[NR]=$1} END {printf "%.0f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

for round in $(seq 1 "$ROUNDS"); do
    for n in $WORKERS; do run mcp "$n"; run floor "$n"; run queue "$n"; done
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
printf '%-8s %10s %10s %8s %10s %8s\n' workers mcp/s floor/s ratio queue/s ratio
for n in $WORKERS; do
    m=$(median "mcp-$n"); f=$(median "floor-$n"); qq=$(median "queue-$n")
    printf '%-8s %10s %10s %8s %10s %8s\n' "$n" "$m" "$f" "$(ratio "$m" "$f")" "$qq" "$(ratio "$m" "$qq")"
done
echo "(credentials refreshed per second: claim + complete, medians of $ROUNDS runs; target: mcp / floor >= 0.5)"
