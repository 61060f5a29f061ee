# The canary test: a random canary secret goes through every credential API
# function as bind parameters (pgbench -M extended), including calls that fail, with
# log_min_messages = debug5. Then the canary must not appear in the server log, in the raw
# bytes of any relation file of the database, or in the WAL (raw segments and pg_waldump).
# Positive controls (the same scanners must find a second canary stored and logged in
# plaintext on purpose) prove that each scan can fail.
use strict;
use warnings;

use File::Find;
use IPC::Run;
use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $canary  = 'canary-' . substr(mcp_random_key(), 0, 24);
my $control = 'control-' . substr(mcp_random_key(), 0, 24);
my $db      = 'mcp_canary';

my $node = mcp_node('canary');
mcp_create_db($node, $db);
$node->safe_psql($db, q{
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('canary_gh', 'GitHub', 7401, 'api_key'), ('canary_gm', 'Gmail', 7402, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('ca000000-0000-0000-0000-00000000000a', 'canary-a@example.com'),
                                         ('ca000000-0000-0000-0000-00000000000b', 'canary-b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL;
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id, status)
SELECT i.id::uuid, i.u::uuid, t.mcp_service_id, 'active'
  FROM (VALUES ('ca100000-0000-0000-0000-000000000001', 'ca000000-0000-0000-0000-00000000000a', 'canary_gh'),
               ('ca300000-0000-0000-0000-000000000003', 'ca000000-0000-0000-0000-00000000000a', 'canary_gm'),
               ('cb100000-0000-0000-0000-000000000001', 'ca000000-0000-0000-0000-00000000000b', 'canary_gh')) AS i(id, u, svc)
  JOIN mcp.mcp_table t ON t.mcp_service_name = i.svc;
CREATE TABLE public.control_plaintext (v text);
});

$node->safe_psql('postgres',
	"ALTER SYSTEM SET log_min_messages = debug5; SELECT pg_reload_conf();");
$node->poll_query_until('postgres', "SELECT current_setting('log_min_messages') = 'debug5'")
  or die "log_min_messages = debug5 did not take effect";
my $log_start = -s $node->logfile;
my $wal_start = $node->safe_psql($db, 'SELECT pg_current_wal_lsn()');

# One pgbench run per call (a failing call ends a pgbench client). Every secret is a pgbench
# variable, so -M extended sends it as a bind parameter.
my $script = $node->basedir . '/call.sql';
my @vars = (
	-D => "canary=$canary",
	-D => 'long=' . $canary . ('x' x 600),
	-D => 'longtoken=' . $canary . ('x' x 8200),
	-D => 'tenant=ca000000-0000-0000-0000-00000000000a',
	-D => 'a1=ca100000-0000-0000-0000-000000000001',
	-D => 'a3=ca300000-0000-0000-0000-000000000003',
	-D => 'b1=cb100000-0000-0000-0000-000000000001');

# call('ok' | 'fail', $sql, $returns_secret): the call succeeds (or fails with an ERROR), and
# no message sent to the client quotes the canary unless the call returns the secret.
sub call
{
	my ($expect, $sql, $returns_secret) = @_;
	open my $fh, '>', $script or die $!;
	print $fh "SET mcp_platform.tenant_scope = session;\nSET ROLE mcp_app;\nSELECT set_config('mcp.user_id', :tenant, false);\n$sql\n";
	close $fh;
	my ($out, $err);
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-M', 'extended', '-t', '1', '-f', $script,
			'-h', $node->host, '-p', $node->port, '-d', $db, @vars
		],
		'>', \$out, '2>', \$err);
	my $output = $out . $err;
	if ($expect eq 'ok')
	{
		ok($ok, "call succeeds: $sql") or diag($output);
	}
	else
	{
		like($output, qr/ERROR/, "call fails: $sql");
	}
	unlike($output, qr/\Q$canary\E/, "no message to the client quotes the canary: $sql")
	  unless $returns_secret;
	return;
}

call('ok',   q{SELECT mcp.set_api_key(:a1, :canary);});
call('fail', q{SELECT mcp.set_api_key(:a1, :long);});              # 22001
call('fail', q{SELECT mcp.set_api_key(:a3, :canary);});            # MC202
call('fail', q{SELECT mcp.set_api_key(:b1, :canary);});            # 42501
call('ok',   q{SELECT mcp.get_credentials(:a1);}, 1);
call('ok',   q{SELECT mcp.set_oauth_client(:a3, 'client-id', :canary);});
call('fail', q{SELECT mcp.set_oauth_client(:a3, 'client-id', :long);});
call('fail', q{SELECT mcp.set_oauth_client(:a1, 'client-id', :canary);});
call('ok',   q{SELECT mcp.begin_oauth(:a3, 'https://auth.example.com/authorize');});
call('fail', q{SELECT mcp.complete_oauth(:canary);});              # MC201
call('ok',   q{SELECT mcp.store_oauth_tokens(:a3, :canary, :canary, now() + interval '1 hour', 'repo');});
call('fail', q{SELECT mcp.store_oauth_tokens(:a3, :longtoken, :canary, now(), 'repo');});
call('fail', q{SELECT mcp.store_oauth_tokens(:a1, :canary, :canary, now(), 'repo');});
call('fail', q{SELECT mcp.store_oauth_tokens(:b1, :canary, :canary, now(), 'repo');});
call('ok',   q{SELECT mcp.store_oauth_tokens(:a3, :canary, NULL, now() + interval '2 hours', 'repo');});
call('ok',   q{SELECT mcp.get_credentials(:a3);}, 1);
call('ok',   q{SELECT mcp.claim_token_refresh('1 day', 10);});
call('ok',   q{RESET ROLE; SELECT mcp.encrypt(:canary, '\x01'::bytea);});
call('fail', q{RESET ROLE; SELECT mcp.decrypt(mcp.encrypt(:canary, '\x01'::bytea), '\x02'::bytea);});  # MC102
call('fail', q{SELECT mcp.encrypt(:canary, '\x01'::bytea);});      # 42501 for mcp_app
# Rotation path: re-seal under the same key does nothing; key_status and rotate touch every row.
call('ok',   q{RESET ROLE; SELECT mcp.rotate_credentials(100);});
call('ok',   q{RESET ROLE; SELECT count(*) FROM mcp.key_status();});
# Positive controls: stored in plaintext and written to the log on purpose.
call('ok',   qq{RESET ROLE; INSERT INTO public.control_plaintext VALUES ('$control');});
$node->safe_psql($db, qq{DO \$\$ BEGIN RAISE LOG 'control %', '$control'; END \$\$});
call('ok',   q{SELECT mcp.revoke_credentials(:a1);});

$node->safe_psql('postgres', 'ALTER SYSTEM RESET log_min_messages; SELECT pg_reload_conf();');
$node->safe_psql($db, 'CHECKPOINT');
$node->safe_psql($db, 'SELECT pg_switch_wal()');
my $wal_end = $node->safe_psql($db, 'SELECT pg_current_wal_lsn()');
my $dboid = $node->safe_psql($db,
	'SELECT oid FROM pg_database WHERE datname = current_database()');
my $data = $node->data_dir;

# 1. the server log (only what this run wrote)
my $run_log = mcp_log_since($node, $log_start);
like($run_log, qr/\Q$control\E/,
	'positive control in the server log: the log scan can fail');
like($run_log, qr/DEBUG/, 'DEBUG lines: log_min_messages = debug5 was in effect');
like($run_log, qr/STATEMENT: .*mcp\.set_api_key\(\$1, \$2\)/,
	'failing calls logged with bind placeholders: the canary travelled as a bind parameter');
unlike($run_log, qr/\Q$canary\E/, 'canary not in the server log');

# Files under $dir whose raw bytes contain $needle.
sub files_containing
{
	my ($dir, $needle) = @_;
	my @hits;
	find(
		{
			no_chdir => 1,
			wanted   => sub {
				return unless -f $_;
				my $bytes = slurp_file($_);
				push @hits, $_ if index($bytes, $needle) >= 0;
			}
		},
		$dir);
	return @hits;
}

# 2. raw relation files of the database (heap, TOAST, indexes, free space maps)
ok(scalar(files_containing("$data/base/$dboid", $control)) > 0,
	'positive control in the relation files');
is_deeply([ files_containing("$data/base/$dboid", $canary) ], [], 'canary not in relation files');

# 3. the WAL: raw segments and pg_waldump's rendering of this run's records
ok(scalar(files_containing("$data/pg_wal", $control)) > 0, 'positive control in the WAL segments');
is_deeply([ files_containing("$data/pg_wal", $canary) ], [], 'canary not in WAL segments');
my ($waldump, $walerr) = ('', '');
IPC::Run::run([ 'pg_waldump', '-p', "$data/pg_wal", '-s', $wal_start, '-e', $wal_end ],
	'>', \$waldump, '2>', \$walerr);
ok(length($waldump) > 0, "pg_waldump printed the records of $wal_start..$wal_end")
  or diag($walerr);
unlike($waldump, qr/\Q$canary\E/, 'canary not in pg_waldump output');

note(sprintf('%d log lines at debug5, %d WAL records scanned',
	scalar(() = $run_log =~ /\n/g), scalar(() = $waldump =~ /\n/g)));

$node->stop;
done_testing();
