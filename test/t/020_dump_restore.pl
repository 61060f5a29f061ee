# pg_dump / pg_restore round trip of a populated database:
#  1. every table of schema mcp (tenants, plans, instances, ciphertexts, audit log with its day
#     partitions, rollups, key check) is identical after the README's restore recipe;
#  2. restored ciphertexts decrypt with the same keyring;
#  3. with another key under the same version they fail cleanly (MC102), never decrypt.
use strict;
use warnings;

use IPC::Run;
use Time::HiRes qw(usleep);
use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $key  = mcp_random_key();
my $node = mcp_node('dump', keys => [ [ 1, $key ] ]);
my ($src, $dst) = ('mcp_dump_src', 'mcp_dump_dst');
my $user_a = '00000000-0000-0000-0000-00000000000a';
my $user_b = '00000000-0000-0000-0000-00000000000b';

mcp_create_db($node, $src);
$node->safe_psql($src, q{
INSERT INTO mcp.mcp_table (mcp_service_id, mcp_service_name, display_name, port, type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'github', 'GitHub', 7101, 'api_key'),
    ('00000000-0000-0000-0000-0000000000c2', 'gmail', 'Gmail', 7102, 'oauth');
INSERT INTO mcp.users (id, email) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'a@example.com'),
    ('00000000-0000-0000-0000-00000000000b', 'b@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL
 WHERE user_id = '00000000-0000-0000-0000-00000000000b';
INSERT INTO mcp.user_billing_details (user_id, razorpay_customer_id, card_last_four)
VALUES ('00000000-0000-0000-0000-00000000000b', 'cust_b', '4242');
INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id) VALUES
    ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-0000000000c1'),
    ('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c1'),
    ('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-0000000000c2');
});
$node->safe_psql($src, mcp_as_tenant($user_a, q{
SELECT mcp.set_api_key('00000000-0000-0000-0000-0000000000a1', 'sk-dump-a-0123456789');}));
$node->safe_psql($src, mcp_as_tenant($user_b, q{
SELECT mcp.set_api_key('00000000-0000-0000-0000-0000000000b1', 'sk-dump-b-9876543210');
SELECT mcp.set_oauth_client('00000000-0000-0000-0000-0000000000b2', 'client-b', 'secret-b');
SELECT mcp.store_oauth_tokens('00000000-0000-0000-0000-0000000000b2', 'access-b', 'refresh-b',
                              now() + interval '1 hour', 'mail.read');
SELECT mcp.log_token_operation('00000000-0000-0000-0000-0000000000b2', 'refresh', 'failure', 'oauth',
                               'timeout', 'provider did not answer', '{"attempt": 2}');}));
# history in day partitions of the past, migrated with a plain INSERT … SELECT
$node->safe_psql($src, q{
SELECT mcp.ensure_audit_partitions(now() - interval '20 days', now() + interval '1 day');
INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, created_at)
SELECT '00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000b',
       'validate', CASE WHEN g % 5 = 0 THEN 'failure' ELSE 'success' END, 'oauth',
       now() - g * interval '1 hour'
  FROM generate_series(1, 400) g;
SELECT mcp.run_maintenance();
});

# Every table of schema mcp as one digest per table (rows in a stable order).
sub digest
{
	my ($db) = @_;
	return $node->safe_psql($db, q{
SELECT string_agg(format('%s=%s', c.relname,
         (xpath('/row/d/text()', query_to_xml(format(
            'SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) AS d FROM %s t',
            '|', '', c.oid::regclass), false, false, '')))[1]::text), E'\n' ORDER BY c.relname)
  FROM pg_class c
 WHERE c.relnamespace = 'mcp'::regnamespace AND c.relkind IN ('r', 'p');});
}

# The decrypted credentials of both tenants (stdout and stderr: an error must show).
sub creds
{
	my ($db) = @_;
	my ($out, $err) = ('', '');
	$node->psql(
		$db,
		mcp_as_tenant($user_a,
			q{SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000a1');})
		  . mcp_as_tenant($user_b, q{
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b1');
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b2');}),
		stdout => \$out,
		stderr => \$err);
	return $out . $err;
}

my @conn = ('-h', $node->host, '-p', $node->port);
my $dump = $node->basedir . '/app.dump';
my $list = $node->basedir . '/app.list';

# The README's restore recipe: data loaded with triggers off (the dumped counters and plans are
# already consistent), day-partition indexes left to ATTACH.
$node->command_ok([ 'pg_dump', @conn, '-Fc', '-d', $src, '-f', $dump ], 'pg_dump succeeds');
$node->safe_psql('postgres', "CREATE DATABASE $dst");
my $toc = '';
IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', \$toc) or die 'pg_restore -l failed';
append_to_file($list,
	join '', grep { !/ (INDEX|CONSTRAINT|INDEX ATTACH) mcp token_audit_log_p[0-9]{8}/ }
	  split /^/, $toc);
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$node->command_ok(
		[ 'pg_restore', @conn, '--exit-on-error', '-L', $list, '-d', $dst, $dump ],
		'pg_restore succeeds');
}

my ($src_digest, $dst_digest) = (digest($src), digest($dst));
my $ntables = scalar(split /\n/, $src_digest);
cmp_ok($ntables, '>', 5, "the digest covers the tables of schema mcp ($ntables)");
is($dst_digest, $src_digest, "every table of schema mcp is identical: $ntables tables");

my $parts = q{SELECT count(*) FROM pg_inherits WHERE inhparent = 'mcp.token_audit_log'::regclass};
is($node->safe_psql($dst, $parts), $node->safe_psql($src, $parts), 'the day partitions came back');
my $summary = mcp_as_tenant($user_b, 'SELECT * FROM mcp.token_audit_summary ORDER BY 1, 3, 4;');
is($node->safe_psql($dst, $summary), $node->safe_psql($src, $summary), 'the summary is the same');

is($node->safe_psql($dst, 'SELECT count(*) FROM mcp.verify_counters()'),
	'0', 'no counter drifts after the restore');
my ($limit_out, $limit_err) = ('', '');
$node->psql(
	$dst, qq{BEGIN;
SET LOCAL mcp.user_id = '$user_a';
SELECT mcp.create_instance('github');
\\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;},
	on_error_stop => 0,
	stdout        => \$limit_out,
	stderr        => \$limit_err);
like($limit_out, qr/SQLSTATE MC001/, "the free plan's limit still holds after the restore (MC001)");

my $src_creds = creds($src);
my $dst_creds = creds($dst);
is($dst_creds, $src_creds, 'restored ciphertexts decrypt with the same keyring');
like($dst_creds, qr/sk-dump-b-9876543210/, 'and hold the secrets that were stored');

# Another key under the same version: refused up front, cleanly, with MC102. A new session
# reads the keyring file again; wait until one sees the changed key.
mcp_write_keyring(mcp_keyring_file($node), [ 1, mcp_random_key() ]);
$node->reload;
my $seen_change = 0;
for (1 .. 100)
{
	my ($rc, $out, $err) = $node->psql($dst, 'SELECT count(*) FROM mcp.key_status()');
	if ($err =~ /does not match the key recorded/) { $seen_change = 1; last; }
	usleep(100_000);
}
ok($seen_change, 'the changed key of version 1 is detected against the recorded fingerprint');
my ($wrong_out, $wrong_err) = ('', '');
$node->psql(
	$dst, qq{BEGIN;
SET LOCAL mcp.user_id = '$user_b';
SELECT * FROM mcp.get_credentials('00000000-0000-0000-0000-0000000000b1');
\\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;},
	on_error_stop => 0,
	stdout        => \$wrong_out,
	stderr        => \$wrong_err);
like($wrong_out, qr/SQLSTATE MC102/, 'another keyring fails with MC102');
unlike($wrong_out . $wrong_err, qr/sk-dump/, 'and reveals no secret');

mcp_write_keyring(mcp_keyring_file($node), [ 1, $key ]);
$node->reload;
$node->poll_query_until($dst, 'SELECT count(*) > 0 FROM mcp.key_status()')
  or die 'the original keyring did not take effect again';
is(creds($dst), $src_creds, 'the original keyring works again');

$node->stop;
done_testing();
