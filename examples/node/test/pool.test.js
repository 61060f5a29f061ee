// Pooled connections: a session-level tenant left on a connection by one request is never
// served to the next request on that connection (MC301), unless the connection's role opted
// into mcp_platform.tenant_scope = session (set by a superuser; here with ALTER ROLE ... SET).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createDatabase, backendPool, asTenant, ROLES } from '../lib/db.js';

const DATABASE = 'mcp_node_example_pool';
let pool;          // the backend, tenant per transaction (the default)
let sessionPool;   // a tool that keeps one tenant per connection: tenant_scope = session
let ada;
let bob;
let adaInstance;
let bobInstance;
const adaKey = 'ada-secret-key-1';
const bobKey = 'bob-secret-key-2';

before(async () => {
  await createDatabase(DATABASE);
  pool = backendPool(DATABASE);
  sessionPool = backendPool(DATABASE, ROLES.session);
  ada = (await pool.query('SELECT mcp.sign_up($1) AS id', ['ada@example.com'])).rows[0].id;
  bob = (await pool.query('SELECT mcp.sign_up($1) AS id', ['bob@example.com'])).rows[0].id;
  for (const [user, key] of [[ada, adaKey], [bob, bobKey]]) {
    const id = await asTenant(pool, user, async (c) => {
      const inst = (await c.query('SELECT mcp.create_instance($1) AS id', ['github'])).rows[0].id;
      await c.query('SELECT mcp.set_api_key($1, $2)', [inst, key]);
      return inst;
    });
    if (user === ada) adaInstance = id; else bobInstance = id;
  }
});

after(async () => {
  await pool?.end();
  await sessionPool?.end();
});

async function tenantScope(p) {
  return (await p.query("SELECT current_setting('mcp_platform.tenant_scope') AS v")).rows[0].v;
}

// One "request": a client checked out of the pool, used, released.
async function request(p, fn) {
  const client = await p.connect();
  try {
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    return await fn(client, pid);
  } finally {
    client.release();
  }
}

test('a session-level tenant left on a pooled connection is refused with MC301', async () => {
  assert.equal(await tenantScope(pool), 'transaction');
  // request 1: the easy mistake, a session-level tenant (third argument false)
  const pid1 = await request(pool, async (c, pid) => {
    await c.query("SELECT set_config('mcp.user_id', $1, false)", [ada]);
    return pid;
  });
  // request 2, on the same connection, forgets to set a tenant
  const pid2 = await request(pool, async (c, pid) => {
    // Ada's id is still on the connection ...
    assert.equal((await c.query("SELECT current_setting('mcp.user_id') AS v")).rows[0].v, ada);
    // ... but it serves none of her data: not her API key, not her rows
    await assert.rejects(c.query('SELECT api_key FROM mcp.get_credentials($1)', [adaInstance]),
                         { code: 'MC301' });
    await assert.rejects(c.query('SELECT instance_id FROM mcp.mcp_service_table'), { code: 'MC301' });
    await assert.rejects(c.query('SELECT * FROM mcp.plan_status()'), { code: 'MC301' });
    return pid;
  });
  assert.equal(pid2, pid1, 'request 2 ran on the connection request 1 released');
  // request 3, on the same connection, sets its tenant per transaction: it works, as Bob
  const pid3 = await request(pool, async (c, pid) => {
    await c.query('BEGIN');
    await c.query('SELECT mcp.set_tenant($1)', [bob]);
    const me = (await c.query('SELECT mcp.current_user_id() AS id')).rows[0].id;
    const rows = (await c.query('SELECT instance_id FROM mcp.mcp_service_table')).rows;
    const creds = (await c.query('SELECT api_key FROM mcp.get_credentials($1)', [bobInstance])).rows;
    await c.query('COMMIT');
    assert.equal(me, bob);
    assert.deepEqual(rows, [{ instance_id: bobInstance }]);
    assert.deepEqual(creds, [{ api_key: bobKey }]);
    return pid;
  });
  assert.equal(pid3, pid1, 'request 3 ran on the same connection');
  // and the same connection as Ada, per transaction
  const key = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT api_key FROM mcp.get_credentials($1)', [adaInstance])).rows[0].api_key);
  assert.equal(key, adaKey);
});

test('only a superuser sets mcp_platform.tenant_scope', async () => {
  await assert.rejects(pool.query('SET mcp_platform.tenant_scope = session'), { code: '42501' });
});

test('session mode: a role set to tenant_scope = session keeps a session-level tenant', async () => {
  assert.equal(await tenantScope(sessionPool), 'session');
  const pid1 = await request(sessionPool, async (c, pid) => {
    await c.query("SELECT set_config('mcp.user_id', $1, false)", [ada]);
    return pid;
  });
  const pid2 = await request(sessionPool, async (c, pid) => {
    const key = (await c.query('SELECT api_key FROM mcp.get_credentials($1)', [adaInstance])).rows[0].api_key;
    const rows = (await c.query('SELECT instance_id FROM mcp.mcp_service_table')).rows;
    assert.equal(key, adaKey);
    assert.deepEqual(rows, [{ instance_id: adaInstance }]);
    // still tenant-checked: Bob's instance is not Ada's
    await assert.rejects(c.query('SELECT * FROM mcp.get_credentials($1)', [bobInstance]), { code: '42501' });
    return pid;
  });
  assert.equal(pid2, pid1, 'the session-level tenant was used on the connection that set it');
});
