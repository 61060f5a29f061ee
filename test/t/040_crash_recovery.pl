# Crash recovery in the middle of the two long-running maintenance jobs:
#  1. key rotation: the backend running a mcp.rotate_credentials loop is killed with SIGKILL
#     after some batches committed (the postmaster resets every backend and replays the WAL);
#     every credential still decrypts as its tenant, and the rotation then finishes;
#  2. audit retention: the server is stopped in immediate mode while
#     mcp.cleanup_old_token_audit_logs is half done (partitions dropped and rows deleted in
#     its open transaction, held there by a row lock); nothing of it survives, the log and its
#     rollup bookkeeping stay consistent, and the next cleanup removes exactly the expired rows.
# After each crash the plan counters match the rows (mcp.verify_counters() is empty).
use strict;
use warnings;

use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $db = 'mcp_crash';
my $n  = 4000;    # credentials: enough for dozens of rotation batches
my ($key1, $key2) = (mcp_random_key(), mcp_random_key());
# restart_after_crash: the postmaster itself recovers from the killed backend, as in production
my $node = mcp_node('crash', keys => [ [ 1, $key1 ] ], conf => ['restart_after_crash = on']);
mcp_create_db($node, $db);
mcp_add_services($node, $db);

# Tenant i owns instance i, whose API key is 'sk-crash-<i>'.
my $user_sql = q{format('00000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid};
my $inst_sql = q{format('10000000-0000-0000-0000-%s', lpad(i::text, 12, '0'))::uuid};
$node->safe_psql($db, qq{
INSERT INTO mcp.users (id, email) SELECT $user_sql, 'crash-' || i || '\@example.com'
  FROM generate_series(1, $n) AS i;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
SELECT $inst_sql, $user_sql, (SELECT mcp_service_id FROM mcp.mcp_table WHERE mcp_service_name = 'github')
  FROM generate_series(1, $n) AS i;
DO \$\$ BEGIN
  FOR i IN 1..$n LOOP
    PERFORM set_config('mcp.user_id', ($user_sql)::text, true);
    PERFORM mcp.set_api_key($inst_sql, 'sk-crash-' || i);
  END LOOP;
END \$\$;});

# Every credential, read by the application role as its tenant: "decrypted N of N, 0 failed".
my $check_all = qq{SET ROLE mcp_app;
DO \$\$
DECLARE
  good integer := 0;
  bad integer := 0;
  k text;
BEGIN
  FOR i IN 1..$n LOOP
    PERFORM set_config('mcp.user_id', ($user_sql)::text, true);
    BEGIN
      SELECT c.api_key INTO k FROM mcp.get_credentials($inst_sql) c;
      IF k = 'sk-crash-' || i THEN good := good + 1; ELSE bad := bad + 1; END IF;
    EXCEPTION WHEN others THEN
      bad := bad + 1;
    END;
  END LOOP;
  RAISE NOTICE 'decrypted % of $n, % failed', good, bad;
END \$\$;};
sub decrypt_all
{
	my ($rc, $out, $err) = $node->psql($db, $check_all);
	return $err =~ /NOTICE:  (decrypted \d+ of \d+, \d+ failed)/ ? $1 : $err;
}
my $all_good = "decrypted $n of $n, 0 failed";
my $versions = q{SELECT string_agg(key_version || ':' || n, ' ' ORDER BY key_version)
                   FROM (SELECT key_version, count(*) AS n FROM mcp.mcp_credentials GROUP BY 1) v};
is(decrypt_all(), $all_good, 'every credential decrypts before the crashes');
is($node->safe_psql($db, $versions), "1:$n", "all $n credentials under key 1");

# ---- 1. SIGKILL in the middle of a rotation loop ----------------------------------------------
mcp_write_keyring(mcp_keyring_file($node), [ 1, $key1 ], [ 2, $key2 ]);
$node->reload;
ok(mcp_wait_sql($node, $db, 'SELECT mcp_internal.active_key_version() = 2'), 'key 2 is active');

# Batches of 200, each holding its re-sealed rows uncommitted for 0.1 s (as a throttled
# rotation job would): the kill lands, almost surely, while a batch is open.
my $batch = 200;
my $rotator = $node->background_psql($db, on_error_stop => 0);
my $rotator_pid = $rotator->query_safe('SELECT pg_backend_pid()');
$rotator->query_until(qr/rotating/, qq{\\echo rotating
DO \$\$ BEGIN
  LOOP
    EXIT WHEN mcp.rotate_credentials($batch) = 0;
    PERFORM pg_sleep(0.1);
    COMMIT;
  END LOOP;
END \$\$;
});
ok( mcp_wait_sql(
		$node, $db,
		qq{SELECT (SELECT count(*) > 0 FROM mcp.mcp_credentials WHERE key_version = 2)
		      AND (SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = $rotator_pid)}),
	'the rotation loop committed a batch and has the next one open');
my $log_offset = -s $node->logfile;
kill 'KILL', $rotator_pid;
ok(mcp_wait_log($node, qr/database system is ready to accept connections/, $log_offset),
	'the server recovered from the killed rotation');
my $crash_log = mcp_log_since($node, $log_offset);
like($crash_log, qr/\(PID $rotator_pid\) was terminated by signal 9/, 'the rotation backend was killed');
like($crash_log, qr/redo starts at/, 'recovery replayed the WAL');
eval { $rotator->quit };

my ($v1, $v2) = (0, 0);
($v1) = $node->safe_psql($db, $versions) =~ /\b1:(\d+)/;
($v2) = $node->safe_psql($db, $versions) =~ /\b2:(\d+)/;
$v1 //= 0;
$v2 //= 0;
ok($v1 > 0 && $v2 > 0 && $v1 + $v2 == $n,
	"the crash left the rotation half done: $v2 of $n under key 2, $v1 under key 1");
is($v2 % $batch, 0, "only whole batches of $batch survived the crash");
is(decrypt_all(), $all_good, 'every credential decrypts after the crash');
is($node->safe_psql($db, 'SELECT count(*) FROM mcp.verify_counters()'), '0',
	'no counter drifts after the crash');

my ($rounds, $left) = (0, -1);
while ($rounds < 50)
{
	$rounds++;
	$left = $node->safe_psql($db, 'SELECT mcp.rotate_credentials(500)');
	last if $left eq '0';
}
is($left, '0', "the rotation then finishes (returns 0 after $rounds calls)");
is($node->safe_psql($db, $versions), "2:$n", "all $n credentials under key 2");
# without key 1 in the keyring at all, every credential still decrypts
mcp_write_keyring(mcp_keyring_file($node), [ 2, $key2 ]);
$node->reload;
ok( mcp_wait_sql(
		$node, $db,
		'SELECT NOT EXISTS (SELECT 1 FROM mcp.key_status() WHERE key_version = 1 AND in_keyring)'),
	'key 1 is gone from the keyring');
is(decrypt_all(), $all_good, 'every credential decrypts with key 2 alone');

# ---- 2. immediate stop in the middle of the audit cleanup ------------------------------------
# Young rows (rolled up by a maintenance run), then expired ones: whole days in their own
# partitions, and days without one (in the DEFAULT partition).
$node->safe_psql($db, q{
SELECT mcp.ensure_audit_partitions(now() - interval '10 days', now() + interval '1 day');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '10000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000001', 'validate',
       CASE WHEN g % 4 = 0 THEN 'failure' ELSE 'success' END, 'oauth', now() - g * interval '1 minute'
  FROM generate_series(1, 5000) AS g;
SELECT mcp.run_maintenance();
SELECT mcp.ensure_audit_partitions(now() - interval '100 days', now() - interval '95 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000002', 'refresh',
       'success', 'oauth', now() - interval '95 days' - g * interval '1 minute'
  FROM generate_series(1, 5000) AS g;                       -- partitions
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '10000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000002', 'refresh',
       'failure', 'oauth', now() - interval '120 days' - g * interval '1 minute'
  FROM generate_series(1, 20000) AS g;                      -- DEFAULT partition
});

my $expired_sql = q{SELECT count(*) FROM mcp.token_audit_log WHERE created_at < now() - interval '90 days'};
my $parts_sql = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass};
# The audit bookkeeping agrees with the log: the summary equals the plain aggregate both ways
# (and is not empty), and every day count without a dirty mark is exact.
my $audit_consistent = q{
WITH raw AS (
  SELECT instance_id, user_id, operation, method, count(*) AS total,
         count(*) FILTER (WHERE status = 'success') AS success,
         count(*) FILTER (WHERE status = 'failure') AS failure,
         min(created_at) AS first_at, max(created_at) AS last_at
    FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4),
summary AS (
  SELECT instance_id, user_id, operation, method, total_operations, success_count, failure_count,
         first_operation_at, last_operation_at
    FROM mcp.token_audit_summary)
SELECT (SELECT count(*) FROM summary) > 0
   AND NOT EXISTS (SELECT * FROM summary EXCEPT ALL SELECT * FROM raw)
   AND NOT EXISTS (SELECT * FROM raw EXCEPT ALL SELECT * FROM summary)
   AND NOT EXISTS (
         SELECT 1 FROM mcp.token_audit_day_rows r
          WHERE NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days d WHERE d.day = r.day)
            AND r.row_count <> (SELECT count(*) FROM mcp.token_audit_log l
                                 WHERE (l.created_at AT TIME ZONE 'UTC')::date = r.day))};
my $total_before   = $node->safe_psql($db, 'SELECT count(*) FROM mcp.token_audit_log');
my $expired_before = $node->safe_psql($db, $expired_sql);
my $parts_before   = $node->safe_psql($db, $parts_sql);
is($expired_before, 25000, '25000 expired audit rows before the cleanup');
is($node->safe_psql($db, $audit_consistent), 't', 'the audit bookkeeping is consistent before');

# A row lock on the dirty mark of an expired, partitioned day holds the cleanup at its last
# step, after it dropped the partitions and deleted the DEFAULT partition's rows.
my $blocker = $node->background_psql($db);
$blocker->query_safe('BEGIN');
isnt(
	$blocker->query_safe(q{SELECT day FROM mcp.token_audit_dirty_days
	                        WHERE day = ((now() - interval '96 days') AT TIME ZONE 'UTC')::date
	                          FOR UPDATE}),
	'', 'a dirty mark of an expired, partitioned day is locked');
my $cleaner = $node->background_psql($db, on_error_stop => 0);
$cleaner->query_until(qr/cleaning/, q{\echo cleaning
SELECT mcp.cleanup_old_token_audit_logs('90 days');
});
ok( mcp_wait_sql(
		$node, $db,
		q{SELECT count(*) = 1 FROM pg_stat_activity
		   WHERE query LIKE '%cleanup_old_token_audit_logs%' AND wait_event_type = 'Lock'
		     AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()}),
	'the cleanup is waiting half done, its writes uncommitted');
$node->stop('immediate');
eval { $cleaner->quit };
eval { $blocker->quit };
$node->start;

is($node->safe_psql($db, 'SELECT count(*) FROM mcp.token_audit_log'), $total_before,
	'after the crash no audit row is gone');
is($node->safe_psql($db, $parts_sql), $parts_before, 'and no partition');
is($node->safe_psql($db, $audit_consistent), 't', 'the audit bookkeeping is consistent after the crash');
is($node->safe_psql($db, 'SELECT count(*) FROM mcp.verify_counters()'), '0',
	'no counter drifts after the second crash');
is($node->safe_psql($db, q{SELECT mcp.cleanup_old_token_audit_logs('90 days')}), $expired_before,
	'the next cleanup removes exactly the expired rows');
is($node->safe_psql($db, $expired_sql), '0', 'no expired row is left');
is($node->safe_psql($db, 'SELECT count(*) FROM mcp.token_audit_log'), $total_before - $expired_before,
	'the younger rows are kept');
is($node->safe_psql($db, $audit_consistent), 't', 'the audit bookkeeping is consistent after the cleanup');
is(decrypt_all(), $all_good, 'every credential still decrypts at the end');

$node->stop;
done_testing();
