// Shared by the tests: a database of their own with the extension, the login roles a
// platform would create, and the two patterns a backend uses on a pooled connection.
// The connection comes from the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE):
// PGUSER must be a superuser, which only the setup below uses.
import pg from 'pg';

// Setups of several test files (node --test runs each file in a process of its own) take
// turns: CREATE EXTENSION creates the cluster-wide roles mcp_app and mcp_admin if missing.
const SETUP_LOCK = 4242001;

// The SQL identifiers below are constants of the tests, never input.
export const ROLES = {
  backend: 'node_backend',   // LOGIN, member of mcp_app: the platform backend
  ops: 'node_ops',           // LOGIN, member of mcp_admin: the catalog and plans
  session: 'node_session',   // LOGIN, member of mcp_app, tenant_scope = session in the test database
};

// Drops and recreates `database` with the extension, the roles and the service catalog.
export async function createDatabase(database) {
  const admin = new pg.Client();                     // PGDATABASE, as the superuser PGUSER
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [SETUP_LOCK]);
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database}`);
    const db = new pg.Client({ database });
    await db.connect();
    try {
      await db.query('CREATE EXTENSION mcp_platform');
      for (const [role, member] of [[ROLES.backend, 'mcp_app'], [ROLES.ops, 'mcp_admin'],
                                    [ROLES.session, 'mcp_app']]) {
        const { rowCount } = await db.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
        // password-less: the test cluster trusts local connections; a real one uses a password
        if (rowCount === 0) await db.query(`CREATE ROLE ${role} LOGIN`);
        await db.query(`GRANT ${member} TO ${role}`);
      }
      // Only a superuser may set mcp_platform.tenant_scope (SUSET); set for a role by a
      // superuser it applies to that role's sessions in this database.
      await db.query(`ALTER ROLE ${ROLES.session} IN DATABASE ${database} ` +
                     `SET mcp_platform.tenant_scope = 'session'`);
    } finally {
      await db.end();
    }
  } finally {
    await admin.end();                               // ends the advisory lock too
  }
  // The catalog, as the operators' role.
  const ops = new pg.Client({ database, user: ROLES.ops });
  await ops.connect();
  try {
    await ops.query(`INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
                     VALUES ('github', 'GitHub', 7001, 'api_key'), ('gmail', 'Gmail', 7002, 'oauth')`);
  } finally {
    await ops.end();
  }
}

// A pool of the backend's connections; max 2, so connections are reused.
export function backendPool(database, user = ROLES.backend) {
  return new pg.Pool({ database, user, max: 2 });
}

// The pattern for every request that acts for a user: one transaction, the tenant set first
// (transaction-local), everything else inside it.
export async function asTenant(pool, userId, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT mcp.set_tenant($1)', [userId]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
