# The upgrade test: test/upgrade/upgrade_test.sh against a node of its own. A database created
# at release 1.0 and populated through the 1.0 API is updated with ALTER EXTENSION
# mcp_platform UPDATE; its catalog must equal a fresh install's (pg_dump --binary-upgrade
# --schema-only of both, normalised only for OIDs and the audit log's day partitions, plus
# the pg_dump registrations), every value written before must read back after, and the
# comparison must report an upgraded database that misses an object.
use strict;
use warnings;

use File::Basename qw(dirname);
use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = mcp_node('upgrade');
my $script = dirname(__FILE__) . '/../upgrade/upgrade_test.sh';
local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGUSER} = $ENV{PGUSER} // scalar getpwuid($<);
local $ENV{PGDATABASE} = 'postgres';
my $out = `bash $script 2>&1`;
my $rc = $? >> 8;
my $checks = 0;
for my $line (split /\n/, $out)
{
	if ($line =~ /^(not )?ok - (.*)$/)
	{
		ok(!defined $1, $2);
		$checks++;
	}
}
diag($out) if $rc != 0;
is($rc, 0, 'the upgrade test script exits 0');
cmp_ok($checks, '>=', 8, 'every check of the upgrade test ran');
$node->stop;
done_testing();
