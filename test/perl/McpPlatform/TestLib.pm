# Shared setup of the TAP tests (test/t/*.pl): a PostgreSQL::Test::Cluster node with the
# extension's keyring configured, and helpers to create tenants, instances and secrets.
#
#   use McpPlatform::TestLib;
#   my $node = mcp_node('main');                              # started, one random key
#   my $node = mcp_node('w', preload => 1, conf => ["mcp_platform.maintenance_interval = '1s'"]);
#   my $node = mcp_node('k', keys => [[1, $k1], [2, $k2]], key_source => 'command', start => 0);
#
# The keyring lives beside the data directory (never inside it: a base backup must not carry
# the keys), mode 0600, as the extension demands.

package McpPlatform::TestLib;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  mcp_node mcp_random_key mcp_write_keyring mcp_keyring_file
  mcp_create_db mcp_add_services mcp_add_user mcp_add_instance mcp_as_tenant
  mcp_uuid mcp_log_since mcp_wait_sql mcp_wait_log
);

# 64 hex characters from /dev/urandom: one AES-256 key as a keyring line wants it.
sub mcp_random_key
{
	open my $fh, '<:raw', '/dev/urandom' or die "could not open /dev/urandom: $!";
	read($fh, my $bytes, 32) == 32 or die "could not read /dev/urandom: $!";
	close $fh;
	return unpack('H*', $bytes);
}

# mcp_write_keyring($file, [version, hex], ...): writes a keyring readable by its owner only.
sub mcp_write_keyring
{
	my ($file, @keys) = @_;
	my $text = "# mcp_platform test keyring\n";
	$text .= "$_->[0] $_->[1]\n" for @keys;
	# written under a temporary name and renamed: a reload never sees half a file
	open my $fh, '>', "$file.tmp" or die "could not write $file.tmp: $!";
	chmod 0600, "$file.tmp" or die "could not chmod $file.tmp: $!";
	print $fh $text;
	close $fh or die "could not write $file.tmp: $!";
	rename "$file.tmp", $file or die "could not rename $file.tmp: $!";
	return $file;
}

# The keyring file of a node made by mcp_node (also the one key_command prints).
sub mcp_keyring_file
{
	my ($node) = @_;
	return $node->basedir . '/keyring';
}

# mcp_node($name, %opts): a new node with the extension's keyring configured.
#   keys       => [[version, hex], ...]    default: one random key, version 1
#   key_source => 'file' | 'command'      mcp_platform.key_file, or a key_command that cats it
#   preload    => 'shared' (default) | 'session' | 0
#                                          shared_preload_libraries or session_preload_libraries
#                                          = 'mcp_platform' (the key settings need one of them)
#   conf       => [lines]                  more postgresql.conf lines (after the defaults)
#   start      => 0                        return it initialised but not started
# Defaults: log_statement = none (Cluster.pm logs every statement, secrets in literals
# included), log_min_messages = warning, wal_level = replica (a server's default; Cluster.pm
# makes it minimal, which writes less of the data to the WAL).
sub mcp_node
{
	my ($name, %opts) = @_;
	my $keys = $opts{keys} // [ [ 1, mcp_random_key() ] ];
	my $source = $opts{key_source} // 'file';

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $keyring = mcp_write_keyring(mcp_keyring_file($node), @$keys);

	my @conf = ("log_statement = none", "log_min_messages = warning", "wal_level = replica");
	if ($source eq 'file')
	{
		push @conf, "mcp_platform.key_file = '$keyring'";
	}
	elsif ($source eq 'command')
	{
		push @conf, "mcp_platform.key_command = 'cat $keyring'";
	}
	else
	{
		die "unknown key_source '$source'";
	}
	# the key settings are used only with the library preloaded
	my $preload = $opts{preload} // 'shared';
	push @conf, "shared_preload_libraries = 'mcp_platform'" if $preload eq 'shared' || $preload eq '1';
	push @conf, "session_preload_libraries = 'mcp_platform'" if $preload eq 'session';
	push @conf, @{ $opts{conf} // [] };
	$node->append_conf('postgresql.conf', join("\n", @conf));

	$node->start unless defined $opts{start} && !$opts{start};
	return $node;
}

# mcp_create_db($node, $db, version => '1.0'): a new database with the extension (at its
# default version unless one is named).
sub mcp_create_db
{
	my ($node, $db, %opts) = @_;
	my $version = defined $opts{version} ? " VERSION '$opts{version}'" : '';
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db,
		"SET client_min_messages = warning; CREATE EXTENSION mcp_platform$version");
	return $db;
}

# A fixed uuid from a short tag and a number: mcp_uuid('a', 1) = 0000000a-...-000000000001.
sub mcp_uuid
{
	my ($tag, $n) = @_;
	return sprintf('%08s-0000-0000-0000-%012d', $tag, $n // 0);
}

# mcp_add_services($node, $db): services 'github' (api_key) and 'gmail' (oauth).
sub mcp_add_services
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
		INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
		VALUES ('github', 'GitHub', 7101, 'api_key'), ('gmail', 'Gmail', 7102, 'oauth')});
	return;
}

# mcp_add_user($node, $db, $user_id, plan => 'pro'): a tenant; 'pro' without an instance limit.
sub mcp_add_user
{
	my ($node, $db, $user, %opts) = @_;
	my $sql = "INSERT INTO mcp.users (id, email) VALUES ('$user', '$user\@example.com');";
	$sql .= "UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL WHERE user_id = '$user';"
	  if ($opts{plan} // 'free') eq 'pro';
	$node->safe_psql($db, $sql);
	return $user;
}

# mcp_add_instance($node, $db, $user_id, $service_name, $instance_id): an instance row, as the
# application's admin path writes it (the plan trigger counts it).
sub mcp_add_instance
{
	my ($node, $db, $user, $service, $instance) = @_;
	$node->safe_psql($db, qq{
		INSERT INTO mcp.mcp_service_table (instance_id, user_id, mcp_service_id)
		SELECT '$instance', '$user', mcp_service_id FROM mcp.mcp_table WHERE mcp_service_name = '$service'});
	return $instance;
}

# The SQL text that runs $sql as tenant $user_id in one transaction (for safe_psql/psql).
sub mcp_as_tenant
{
	my ($user, $sql) = @_;
	return "BEGIN;\nSET LOCAL mcp.user_id = '$user';\n$sql\nCOMMIT;\n";
}

# What the node's server log gained since byte $offset.
sub mcp_log_since
{
	my ($node, $offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# mcp_wait_sql($node, $db, $sql, $seconds = 30): true once $sql returns 't'. Unlike
# poll_query_until it gives up after $seconds, so a failing check costs seconds, not minutes.
sub mcp_wait_sql
{
	my ($node, $db, $sql, $seconds) = @_;
	my $deadline = time + ($seconds // 30);
	while (1)
	{
		my ($rc, $out) = $node->psql($db, $sql);
		return 1 if $rc == 0 && $out eq 't';
		return 0 if time > $deadline;
		usleep(200_000);
	}
}

# mcp_wait_log($node, $regex, $offset = 0, $seconds = 30): true once the server log (from
# byte $offset on) matches $regex.
sub mcp_wait_log
{
	my ($node, $regex, $offset, $seconds) = @_;
	my $deadline = time + ($seconds // 30);
	while (1)
	{
		return 1 if mcp_log_since($node, $offset // 0) =~ $regex;
		return 0 if time > $deadline;
		usleep(200_000);
	}
}

1;
