# The key settings say where the keys are: no role but a superuser may read them, in any
# session, and the extension uses them only when that holds -- when the library is preloaded
# (shared_preload_libraries, or session_preload_libraries: either defines the settings,
# superuser-only, before a session runs its first statement). Without a preload, a session
# that has not loaded the library shows the value of a placeholder to anyone, so encryption
# then refuses with MC101 and a hint. Each check runs as a non-superuser in a fresh session
# that has called nothing.
use strict;
use warnings;

use McpPlatform::TestLib;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $db = 'mcp_keys';
for my $case ([ 'shared', 'shared' ], [ 'session', 'session' ], [ 'none', 0 ])
{
	my ($label, $preload) = @$case;
	my $node = mcp_node("keys_$label", preload => $preload);
	mcp_create_db($node, $db);
	$node->safe_psql($db, 'CREATE ROLE regress_reader LOGIN IN ROLE mcp_admin');
	# without a preload only the setting that is set exists (as a placeholder)
	for my $setting ($preload ? ('mcp_platform.key_file', 'mcp_platform.key_command') : ('mcp_platform.key_file'))
	{
		my ($rc, $out, $err) = $node->psql($db, "SHOW $setting",
			extra_params => [ '-U', 'regress_reader' ]);
		if ($preload)
		{
			isnt($rc, 0, "$label preload: SHOW $setting is refused to a non-superuser");
			like($err, qr/permission denied|must be superuser|privileges of pg_read_all_settings/,
				"$label preload: refused for want of privilege");
		}
		else
		{
			# documented: a placeholder is readable; the extension then does not use it
			is($rc, 0, "no preload: SHOW $setting answers (a placeholder)");
		}
	}
	my ($rc, $out, $err) = $node->psql($db,
		"\\set VERBOSITY verbose\nSELECT length(mcp.encrypt('secret', '\\x01')) > 0",
		extra_params => [ '-U', 'regress_reader' ]);
	if ($preload)
	{
		is($out, 't', "$label preload: encryption works");
	}
	else
	{
		like($err, qr/MC101/, 'no preload: encryption refuses with MC101');
		like($err, qr/HINT:.*shared_preload_libraries/, 'and the hint says what to configure');
	}
	$node->stop;
}
done_testing();
