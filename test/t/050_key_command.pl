# The other key source, mcp_platform.key_command: a secret stored and read back through it, and
# a command that fails or prints nothing refuses cleanly (MC101) without revealing a secret
# or taking the server down; the working command then works again. (scripts/test.sh also runs
# the whole pg_regress suite on a cluster with a key command.)
use strict;
use warnings;

use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $db   = 'mcp_keycmd';
my $node = mcp_node('keycmd', key_source => 'command');
my $command = "cat " . mcp_keyring_file($node);
is($node->safe_psql('postgres', 'SHOW mcp_platform.key_command'), $command,
	'the key comes from a command');
is($node->safe_psql('postgres', "SELECT coalesce(current_setting('mcp_platform.key_file', true), '')"),
	'', 'and not from a file');

mcp_create_db($node, $db);
mcp_add_services($node, $db);
my $user     = mcp_add_user($node, $db, mcp_uuid('a', 1));
my $instance = mcp_add_instance($node, $db, $user, 'github', mcp_uuid('1a', 1));
$node->safe_psql($db, mcp_as_tenant($user, "SELECT mcp.set_api_key('$instance', 'sk-keycmd-42');"));
my $read = mcp_as_tenant($user, "SELECT api_key FROM mcp.get_credentials('$instance');");
is($node->safe_psql($db, $read), 'sk-keycmd-42', 'a secret stored through the key command reads back');
is($node->safe_psql($db, 'SELECT key_version || stored_values::text FROM mcp.key_status() WHERE in_keyring'),
	'11', 'key_status: version 1 in the keyring, one stored value');

# $command_sql, expected message: a new session fails cleanly with MC101.
for my $case ([ 'false', qr/mcp_platform\.key_command failed/ ],
	[ 'true', qr/mcp_platform\.key_command printed nothing/ ])
{
	my ($bad, $message) = @$case;
	$node->safe_psql('postgres',
		"ALTER SYSTEM SET mcp_platform.key_command = '$bad'; SELECT pg_reload_conf();");
	ok(mcp_wait_sql($node, 'postgres', "SELECT current_setting('mcp_platform.key_command') = '$bad'"),
		"key_command = '$bad' in effect");
	my ($rc, $out, $err) = $node->psql(
		$db, "BEGIN;
SET LOCAL mcp.user_id = '$user';
SELECT api_key FROM mcp.get_credentials('$instance');
\\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;", on_error_stop => 0);
	like($out, qr/SQLSTATE MC101/, "key_command = '$bad': MC101");
	like($err, $message, "key_command = '$bad': the message says why");
	unlike($out . $err, qr/sk-keycmd/, "key_command = '$bad': no secret revealed");
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "key_command = '$bad': the server is up");
}

$node->safe_psql('postgres', 'ALTER SYSTEM RESET mcp_platform.key_command; SELECT pg_reload_conf();');
ok(mcp_wait_sql($node, 'postgres', "SELECT current_setting('mcp_platform.key_command') = '$command'"),
	'the working command is back');
is($node->safe_psql($db, $read), 'sk-keycmd-42', 'and the secret reads back again');

$node->stop;
done_testing();
