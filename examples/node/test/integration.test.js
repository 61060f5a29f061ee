// The integration guide (docs/integration.md), step by step, from a node-postgres backend.
// Every value goes in as a bind parameter; every request that acts for a user is one
// transaction that starts with mcp.set_tenant($1).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createDatabase, backendPool, asTenant, ROLES } from '../lib/db.js';

const DATABASE = 'mcp_node_example';
let pool;      // the backend (mcp_app)
let ops;       // the operators (mcp_admin)
let ada;       // user ids
let bob;
let github;    // instance ids
let gmail;
const apiKey = `ghp_${crypto.randomBytes(12).toString('hex')}`;

before(async () => {
  await createDatabase(DATABASE);
  pool = backendPool(DATABASE);
  ops = new pg.Pool({ database: DATABASE, user: ROLES.ops, max: 1 });
});

after(async () => {
  await pool?.end();
  await ops?.end();
});

test('sign-up and the login lookup need no tenant', async () => {
  ada = (await pool.query('SELECT mcp.sign_up($1, $2) AS id', ['ada@example.com', 'Ada'])).rows[0].id;
  bob = (await pool.query('SELECT mcp.sign_up($1, $2) AS id', ['bob@example.com', 'Bob'])).rows[0].id;
  assert.match(ada, /^[0-9a-f-]{36}$/);
  const found = await pool.query('SELECT mcp.find_user($1) AS id', ['ADA@Example.com']);
  assert.equal(found.rows[0].id, ada);
  const unknown = await pool.query('SELECT mcp.find_user($1) AS id', ['nobody@example.com']);
  assert.equal(unknown.rows[0].id, null);
  await assert.rejects(pool.query('SELECT mcp.sign_up($1, $2)', ['Ada@example.com', 'Again']),
                       { code: '23505' });
});

test('the tenant is set per transaction and ends with it', async () => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT mcp.set_tenant($1)', [ada]);
    const inside = await client.query('SELECT mcp.current_user_id() AS id, (SELECT count(*) FROM mcp.users)::int AS n');
    assert.deepEqual(inside.rows[0], { id: ada, n: 1 });   // Ada sees her own account only
    await client.query('COMMIT');
    const afterCommit = await client.query('SELECT mcp.current_user_id() AS id, (SELECT count(*) FROM mcp.users)::int AS n');
    assert.deepEqual(afterCommit.rows[0], { id: null, n: 0 });
  } finally {
    client.release();
  }
});

test('create an instance', async () => {
  github = await asTenant(pool, ada, async (c) =>
    (await c.query("SELECT mcp.create_instance($1, $2, now() + interval '30 days') AS id",
                   ['github', 'work account'])).rows[0].id);
  assert.match(github, /^[0-9a-f-]{36}$/);
  const rows = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT instance_id, status, custom_name FROM mcp.mcp_service_table')).rows);
  assert.deepEqual(rows, [{ instance_id: github, status: 'active', custom_name: 'work account' }]);
});

test('the plan limit refuses a second active instance with MC001', async () => {
  await assert.rejects(
    asTenant(pool, ada, (c) => c.query('SELECT mcp.create_instance($1, $2)', ['gmail', 'second'])),
    (err) => {
      assert.equal(err.code, 'MC001');
      assert.equal(err.detail, 'limit=1 active=1');
      return true;
    });
});

test('mcp.plan_status()', async () => {
  const status = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT plan_type, effective_plan, effective_limit, active_instances, remaining, lapsed FROM mcp.plan_status()')).rows[0]);
  // bigint columns arrive as strings in node-postgres
  assert.deepEqual(status, { plan_type: 'free', effective_plan: 'free', effective_limit: 1,
                             active_instances: '1', remaining: '0', lapsed: false });
});

test('an API key is stored encrypted and read back', async () => {
  await asTenant(pool, ada, (c) => c.query('SELECT mcp.set_api_key($1, $2)', [github, apiKey]));
  const creds = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT auth_type, api_key FROM mcp.get_credentials($1)', [github])).rows);
  assert.deepEqual(creds, [{ auth_type: 'api_key', api_key: apiKey }]);
  // the backend role cannot read the ciphertext column itself
  await assert.rejects(
    asTenant(pool, ada, (c) => c.query('SELECT api_key FROM mcp.mcp_credentials')), { code: '42501' });
});

test('an OAuth flow: client, state and PKCE, tokens', async () => {
  // an operator upgrades Ada, so a second instance fits her plan
  await ops.query("SELECT mcp.set_plan($1, 'pro', now() + interval '1 month')", [ada]);
  gmail = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT mcp.create_instance($1, $2) AS id', ['gmail', 'mail'])).rows[0].id);
  await asTenant(pool, ada, (c) =>
    c.query('SELECT mcp.set_oauth_client($1, $2, $3)', [gmail, 'client-123', 'client-secret-456']));
  const { state, code_challenge: challenge } = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT state, code_challenge FROM mcp.begin_oauth($1, $2)',
                   [gmail, 'https://provider.example/auth'])).rows[0]);
  assert.ok(state.length >= 32, 'state');
  // the provider redirects back with the state; the backend completes the flow
  const done = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT instance_id, code_verifier FROM mcp.complete_oauth($1)', [state])).rows[0]);
  assert.equal(done.instance_id, gmail);
  assert.match(done.code_verifier, /^[A-Za-z0-9._~-]{43,128}$/);      // RFC 7636
  const expected = crypto.createHash('sha256').update(done.code_verifier, 'ascii').digest('base64url');
  assert.equal(challenge, expected, 'S256: code_challenge = base64url(sha256(code_verifier))');
  // a state is single-use
  await assert.rejects(
    asTenant(pool, ada, (c) => c.query('SELECT * FROM mcp.complete_oauth($1)', [state])), { code: 'MC201' });
  // after the code exchange with the provider: the tokens
  await asTenant(pool, ada, (c) =>
    c.query("SELECT mcp.store_oauth_tokens($1, $2, $3, now() + interval '1 hour', $4)",
            [gmail, 'access-abc', 'refresh-def', 'mail.read']));
  const creds = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT auth_type, client_id, client_secret, access_token, refresh_token, token_scope, oauth_status FROM mcp.get_credentials($1)', [gmail])).rows);
  assert.deepEqual(creds, [{ auth_type: 'oauth', client_id: 'client-123', client_secret: 'client-secret-456',
                             access_token: 'access-abc', refresh_token: 'refresh-def',
                             token_scope: 'mail.read', oauth_status: 'completed' }]);
});

test('the audit summary shows the tenant its own operations', async () => {
  const rows = await asTenant(pool, ada, async (c) =>
    (await c.query(`SELECT instance_id, operation, total_operations::int AS total, success_count::int AS ok
                      FROM mcp.token_audit_summary ORDER BY instance_id, operation`)).rows);
  const ops_ = Object.fromEntries(rows.map((r) => [`${r.instance_id === github ? 'github' : 'gmail'}:${r.operation}`, r.total]));
  assert.equal(ops_['github:set_api_key'], 1);
  assert.equal(ops_['gmail:set_oauth_client'], 1);
  assert.equal(ops_['gmail:complete_oauth'], 1);
  assert.equal(ops_['gmail:store_tokens'], 1);
  assert.ok(rows.every((r) => r.instance_id === github || r.instance_id === gmail));
  // Bob sees none of it
  const bobs = await asTenant(pool, bob, async (c) =>
    (await c.query('SELECT count(*)::int AS n FROM mcp.token_audit_summary')).rows[0].n);
  assert.equal(bobs, 0);
});

test('error codes: MC301 no tenant, 42501 not yours, MC004 instance not active', async () => {
  // no tenant: autocommit, or a transaction that never set one
  await assert.rejects(pool.query('SELECT * FROM mcp.get_credentials($1)', [github]), { code: 'MC301' });
  await assert.rejects(pool.query('SELECT * FROM mcp.plan_status()'), { code: 'MC301' });
  // another tenant's instance
  await assert.rejects(
    asTenant(pool, bob, (c) => c.query('SELECT * FROM mcp.get_credentials($1)', [github])), { code: '42501' });
  await assert.rejects(
    asTenant(pool, bob, (c) => c.query('SELECT mcp.set_api_key($1, $2)', [github, 'stolen'])), { code: '42501' });
  // Ada switches her GitHub instance off: it hands out no credentials
  await asTenant(pool, ada, (c) =>
    c.query("UPDATE mcp.mcp_service_table SET status = 'inactive' WHERE instance_id = $1", [github]));
  await assert.rejects(
    asTenant(pool, ada, (c) => c.query('SELECT * FROM mcp.get_credentials($1)', [github])), { code: 'MC004' });
});

test('a canary secret sent as a bind parameter never reaches the server log', async () => {
  const dir = process.env.MCP_CLUSTER_DIR;
  assert.ok(dir, 'MCP_CLUSTER_DIR must name the cluster directory (its server.log is read)');
  const logFile = path.join(dir, 'server.log');
  fs.accessSync(logFile, fs.constants.R_OK);           // throws (fails the test) when unreadable
  const canary = `canary-${crypto.randomBytes(16).toString('hex')}`;
  const marker = `probe_${crypto.randomBytes(8).toString('hex')}`;
  // stored through the API ...
  const inst = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT mcp.create_instance($1) AS id', ['github'])).rows[0].id);
  await asTenant(pool, ada, (c) => c.query('SELECT mcp.set_api_key($1, $2)', [inst, canary]));
  await asTenant(pool, ada, (c) =>
    c.query('SELECT mcp.set_oauth_client($1, $2, $3)', [gmail, 'client-123', canary]));
  // ... and in a failing statement, whose text the server logs (log_min_error_statement)
  await assert.rejects(
    asTenant(pool, bob, (c) => c.query(`SELECT mcp.set_api_key($1, $2) AS ${marker}`, [inst, canary])),
    { code: '42501' });
  const creds = await asTenant(pool, ada, async (c) =>
    (await c.query('SELECT api_key FROM mcp.get_credentials($1)', [inst])).rows[0]);
  assert.equal(creds.api_key, canary);
  const log = fs.readFileSync(logFile, 'utf8');
  assert.ok(log.includes(marker), `the failing statement is in ${logFile} (the log is the live one)`);
  assert.ok(!log.includes(canary), `the canary secret is in ${logFile}`);
});
