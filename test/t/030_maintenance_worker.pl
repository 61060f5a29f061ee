# The maintenance background worker (mcp_platform in shared_preload_libraries): one worker per
# listed database, visible in pg_stat_activity; it removes expired audit rows and keeps younger
# ones, logs each run, skips a database without the extension, survives an error in a run,
# moves DEFAULT-partition rows into day partitions (which pg_dump/pg_restore then round-trip),
# and the server stops cleanly and quickly with it running.
use strict;
use warnings;

use IPC::Run;
use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $db = 'mcp_worker_test';
my $node = mcp_node('worker', preload => 1);
# databases first: a worker for a database that does not exist yet would fail to connect
mcp_create_db($node, $db);
$node->safe_psql('postgres', 'CREATE DATABASE mcp_no_ext');
$node->append_conf('postgresql.conf', qq{
mcp_platform.maintenance_interval = '1s'
mcp_platform.maintenance_databases = '$db, mcp_no_ext'});
$node->restart;

$node->safe_psql($db, q{
SELECT mcp.ensure_audit_partitions(now() - interval '100 days', now() - interval '100 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'refresh', 'success', now() - g * interval '50 days'
  FROM generate_series(0, 2) AS g;});

my $two_workers = q{SELECT count(*) = 2 FROM pg_stat_activity
                     WHERE backend_type = 'mcp_platform maintenance'};
ok(mcp_wait_sql($node, $db, $two_workers), 'one worker per database in pg_stat_activity');
ok( mcp_wait_sql(
		$node, $db,
		q{SELECT count(*) FILTER (WHERE created_at < now() - interval '90 days') = 0 AND count(*) = 2
		    FROM mcp.token_audit_log}),
	'expired rows removed, younger kept');
ok(mcp_wait_log($node, qr/mcp_platform maintenance in database "$db": \{.*"skipped": false/),
	'logs one line per run');
ok(mcp_wait_log($node, qr/extension not installed in database "mcp_no_ext", skipping/),
	'skips a database without the extension');

# an error in a run (an invalid retention) is logged, and the next runs go on
$node->safe_psql('postgres',
	"ALTER SYSTEM SET mcp_platform.audit_retention = 'ninety days'; SELECT pg_reload_conf();");
ok(mcp_wait_log($node, qr/invalid input syntax for type interval: "ninety days"/),
	'an error in a run is logged');
ok(mcp_wait_sql($node, $db, $two_workers), 'worker still running after the error');
$node->safe_psql($db, q{
SELECT mcp.ensure_audit_partitions(now() - interval '95 days', now() - interval '95 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, created_at)
VALUES (gen_random_uuid(), gen_random_uuid(), 'refresh', 'success', now() - interval '95 days');});
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET mcp_platform.audit_retention; SELECT pg_reload_conf();');
ok( mcp_wait_sql(
		$node, $db,
		q{SELECT count(*) FILTER (WHERE created_at < now() - interval '90 days') = 0
		    FROM mcp.token_audit_log}),
	'runs again after the error');

# pg_dump / pg_restore round-trips the log, its day partitions (not extension members), the
# DEFAULT partition and the rollup
$node->safe_psql($db, q{
SELECT mcp.ensure_audit_partitions(now() - interval '20 days', now() - interval '18 days');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata, created_at)
SELECT md5('i' || (g % 7))::uuid, md5('u' || (g % 3))::uuid, 'validate', 'failure', 'oauth',
       jsonb_build_object('g', g), now() - g * interval '7 minutes'
  FROM generate_series(1, 6000) AS g;            -- about 29 days, partitions and DEFAULT alike
});

sub audit_digest
{
	my ($dbname) = @_;
	return $node->safe_psql($dbname, q{
SELECT count(*) || ' ' || md5(string_agg(l::text, ',' ORDER BY audit_id))
  FROM mcp.token_audit_log l WHERE created_at > now() - interval '60 days';
SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass;
SELECT count(*) FROM pg_index i JOIN pg_inherits h ON h.inhrelid = i.indrelid
 WHERE h.inhparent = 'mcp.token_audit_log'::regclass;
SELECT count(*) FROM (SELECT * FROM mcp.token_audit_summary EXCEPT ALL
       SELECT instance_id, user_id, operation, method, count(*),
              count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE status = 'failure'),
              round(100.0 * count(*) FILTER (WHERE status = 'success') / count(*), 2),
              min(created_at), max(created_at)
         FROM mcp.token_audit_log WHERE created_at >= now() - interval '30 days'
        GROUP BY 1, 2, 3, 4) x;});
}

# let the worker move the DEFAULT partition's rows into day partitions first
ok(mcp_wait_sql($node, $db, 'SELECT count(*) = 0 FROM mcp.token_audit_log_default'),
	'the worker moves DEFAULT-partition rows into day partitions');

# The README's restore recipe: the indexes of the day partitions are left out of the list
# (attaching a partition to the extension's log creates them again).
my @conn = ('-h', $node->host, '-p', $node->port);
my $dump = $node->basedir . '/audit.dump';
my $list = $node->basedir . '/audit.list';
my ($toc, $err) = ('', '');
my $dump_ok =
     IPC::Run::run([ 'pg_dump', @conn, '-Fc', '-d', $db, '-f', $dump ], '2>', \$err)
  && IPC::Run::run([ 'createdb', @conn, 'mcp_restore_test' ], '2>', \$err)
  && IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', \$toc, '2>', \$err);
if ($dump_ok)
{
	append_to_file($list,
		join '',
		grep { !/ (INDEX|CONSTRAINT|INDEX ATTACH) mcp token_audit_log_p[0-9]{8}/ }
		  split /^/, $toc);
	$dump_ok = IPC::Run::run(
		[
			'pg_restore', @conn, '--exit-on-error', '-L', $list,
			'-d', 'mcp_restore_test', $dump
		],
		'2>', \$err);
}
ok($dump_ok, 'pg_dump/pg_restore succeed') or diag($err);
is(audit_digest('mcp_restore_test'), audit_digest($db),
	'restored log, partitions and summary equal the source');

my $started = time;
my $stopped = $node->stop('fast', fail_ok => 1);
my $seconds = time - $started;
ok($stopped && $seconds <= 10,
	sprintf('server stops cleanly within 10 s (took %.1fs)', $seconds));
my $log = slurp_file($node->logfile);
unlike($log,
	qr/terminated by signal|PANIC|was terminated|server process .* exited with exit code [^01]/,
	'no crash in the server log');
like($log, qr/database system is shut down/, 'the server log ends with a clean shutdown');

if (!PostgreSQL::Test::Utils::all_tests_passing())
{
	diag(join '', grep { /mcp_platform|ERROR|FATAL/ } split /^/, $log);
}
done_testing();
