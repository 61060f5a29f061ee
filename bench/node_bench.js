// get_credentials through a node-postgres pool, side by side with the pattern Nango uses (one
// SELECT of the ciphertext columns, AES-256-GCM decrypted in Node with the `crypto` module).
// Run by bench/node_bench.sh, which sets up the cluster, the rows and the keyring; the
// environment names the server (PGHOST, PGPORT, PGDATABASE) and:
//   BENCH_KEY_HEX  the keyring's key (version 1), which the Nango pattern needs in Node
//   USERS          users 1..USERS, each with one api_key instance holding a stored key
//   ROUNDS, DURATION (seconds), POOL (connections per pool), INFLIGHT (requests in flight)
// Each round runs both patterns (in alternating order), one after the other, for DURATION
// seconds each, with INFLIGHT concurrent request loops over one pool of POOL connections;
// prints requests/s per round, the medians, and the ratio mcp / Nango per round. Beside the
// rate, each phase's CPU time per request, of this Node process (process.cpuUsage) and of the
// pool's server backends (/proc/<pid>/stat): the cost of a request, which the load of a
// shared machine moves much less than the rate.
import fs from 'node:fs';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { createRequire } from 'node:module';

// node-postgres from the example's own dependencies (examples/node, npm ci)
const require = createRequire(new URL('../examples/node/package.json', import.meta.url));
const pg = require('pg');

const env = (name, fallback) => (process.env[name] === undefined ? fallback : process.env[name]);
const KEY = Buffer.from(env('BENCH_KEY_HEX', ''), 'hex');
const USERS = Number(env('USERS', 2000));
const ROUNDS = Number(env('ROUNDS', 5));
const DURATION = Number(env('DURATION', 5));
const POOL = Number(env('POOL', 10));
const INFLIGHT = Number(env('INFLIGHT', 50));
assert.equal(KEY.length, 32, 'BENCH_KEY_HEX must be 64 hex characters');

const userId = (i) => '00000000-0000-0000-0000-' + String(i).padStart(12, '0');
const instanceId = (i) => '00000000-0000-0000-0001-' + String(i).padStart(12, '0');
const uuidBytes = (u) => Buffer.from(u.replaceAll('-', ''), 'hex');

// ---- the envelope in Node (docs/credentials.md, "Envelope format") -----------------------
// format 0x01 | key version (4, big-endian) | nonce (12) | ciphertext | tag (16); associated
// data = the 17 header bytes || "mcpcred1" || user uuid || instance uuid || len(field) || field
function context(user, instance, field) {
  return Buffer.concat([Buffer.from('mcpcred1'), uuidBytes(user), uuidBytes(instance),
                        Buffer.from([field.length]), Buffer.from(field)]);
}
function open(envelope, aad) {
  if (envelope.length < 33 || envelope[0] !== 1) throw new Error('malformed envelope');
  if (envelope.readUInt32BE(1) !== 1) throw new Error('unknown key version');
  const decipher = crypto.createDecipheriv('aes-256-gcm', KEY, envelope.subarray(5, 17));
  decipher.setAAD(Buffer.concat([envelope.subarray(0, 17), aad]));
  decipher.setAuthTag(envelope.subarray(envelope.length - 16));
  return Buffer.concat([decipher.update(envelope.subarray(17, envelope.length - 16)),
                        decipher.final()]).toString('utf8');
}

// ---- the two patterns: one round trip each, named (prepared) statements -------------------
// Nango: the ciphertext columns of the row, as a role without checks (the superuser: no
// row-level security, no tenant check, no audit), decrypted in Node.
const NANGO = {
  name: 'nango_get',
  text: 'SELECT c.api_key, c.client_id, c.client_secret, c.access_token, c.refresh_token,' +
        ' c.token_expires_at, c.token_scope, c.oauth_status' +
        ' FROM mcp.mcp_credentials c WHERE c.user_id = $1 AND c.instance_id = $2',
};
const SECRETS = ['api_key', 'client_secret', 'access_token', 'refresh_token'];
async function nangoGet(pool, i) {
  const user = userId(i), instance = instanceId(i);
  const { rows } = await pool.query({ ...NANGO, values: [user, instance] });
  const row = rows[0];
  for (const field of SECRETS)
    if (row[field] !== null) row[field] = open(row[field], context(user, instance, field));
  return row;
}
// mcp_platform: the tenant named in the call's own autocommit statement (docs/integration.md,
// "One round trip per call"), as a member of mcp_app; decrypted in the database.
const MCP = {
  name: 'mcp_get',
  text: 'SELECT (c).* FROM (SELECT mcp.get_credentials($2) AS c FROM mcp.set_tenant($1) OFFSET 0) AS s',
};
async function mcpGet(pool, i) {
  const { rows } = await pool.query({ ...MCP, values: [userId(i), instanceId(i)] });
  return rows[0];
}

const randomUser = () => 1 + Math.floor(Math.random() * USERS);

// CPU time (user + system, microseconds) of the server processes `pids`.
const TICK_US = 1e6 / 100;  // USER_HZ: /proc reports clock ticks of 1/100 s on Linux
function serverCpu(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);  // utime, stime
  }
  return ticks * TICK_US;
}
// The backends of a pool: every connection of it, opened and held at once.
async function backendPids(pool) {
  const clients = await Promise.all(Array.from({ length: POOL }, () => pool.connect()));
  const pids = [];
  for (const c of clients) pids.push((await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
  clients.forEach((c) => c.release());
  return pids;
}

// INFLIGHT loops, each one request after the other, until the deadline: requests per second,
// and CPU microseconds per request of Node and of the pool's backends.
async function run(fn, pool, seconds, pids = []) {
  let done = 0;
  const node0 = process.cpuUsage(), server0 = serverCpu(pids);
  const deadline = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const row = await fn(pool, randomUser());
      if (typeof row.api_key !== 'string') throw new Error('no api_key in the result');
      done++;
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: INFLIGHT }, loop));
  const rate = done / ((performance.now() - start) / 1000);
  const node1 = process.cpuUsage(node0);
  return { rate, nodeUs: (node1.user + node1.system) / done, serverUs: (serverCpu(pids) - server0) / done };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

// Connections are never closed for idleness (idleTimeoutMillis 0): a pool waits while the other
// runs, and its backends, whose CPU time is read, must stay the same.
const nangoPool = new pg.Pool({ user: env('NANGO_USER', 'postgres'), max: POOL, idleTimeoutMillis: 0 });
const mcpPool = new pg.Pool({ user: env('MCP_USER', 'mcp_bench'), max: POOL, idleTimeoutMillis: 0 });
try {
  // Both return the same plaintext for the same instance.
  for (const i of [1, USERS]) {
    const a = await nangoGet(nangoPool, i), b = await mcpGet(mcpPool, i);
    assert.equal(a.api_key, b.api_key);
    assert.match(b.api_key, /^sk-bench-/);
  }
  // Warm up every connection of both pools (statements prepared, keyring loaded).
  await run(nangoGet, nangoPool, 1);
  await run(mcpGet, mcpPool, 1);
  const nangoPids = await backendPids(nangoPool), mcpPids = await backendPids(mcpPool);
  console.log(`node_bench: node ${process.version}, pool ${POOL}, ${INFLIGHT} in flight, ` +
              `${ROUNDS} rounds of ${DURATION}s, ${USERS} users`);
  const nango = [], mcp = [], ratios = [], costs = [];
  const cpu = (r) => `${(r.nodeUs + r.serverUs).toFixed(0)} us CPU/request ` +
                     `(Node ${r.nodeUs.toFixed(0)} + server ${r.serverUs.toFixed(0)})`;
  for (let r = 0; r < ROUNDS; r++) {
    let a, b;
    if (r % 2 === 0) {
      a = await run(nangoGet, nangoPool, DURATION, nangoPids);
      b = await run(mcpGet, mcpPool, DURATION, mcpPids);
    } else {
      b = await run(mcpGet, mcpPool, DURATION, mcpPids);
      a = await run(nangoGet, nangoPool, DURATION, nangoPids);
    }
    nango.push(a); mcp.push(b); ratios.push(b.rate / a.rate);
    costs.push((a.nodeUs + a.serverUs) / (b.nodeUs + b.serverUs));
    console.log(`round ${r + 1}/${ROUNDS}: Nango pattern ${a.rate.toFixed(0)} req/s, ${cpu(a)}; ` +
                `mcp.get_credentials ${b.rate.toFixed(0)} req/s, ${cpu(b)}; ratio ${(b.rate / a.rate).toFixed(2)}`);
  }
  const med = (xs, f) => median(xs.map(f)).toFixed(0);
  console.log();
  console.log('| pattern | requests/s (median) | ratio to Nango (median of rounds) | range | ' +
              'CPU us/request: Node + server (medians) | target |');
  console.log('|---|---:|---:|---|---|---|');
  console.log(`| Nango: SELECT ciphertext + Node crypto decrypt | ${med(nango, (x) => x.rate)} | 1.00 | | ` +
              `${med(nango, (x) => x.nodeUs)} + ${med(nango, (x) => x.serverUs)} | |`);
  console.log(`| one round trip: mcp.set_tenant + mcp.get_credentials | ${med(mcp, (x) => x.rate)} | ` +
              `${median(ratios).toFixed(2)} | ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)} | ` +
              `${med(mcp, (x) => x.nodeUs)} + ${med(mcp, (x) => x.serverUs)} | >= 1.0 |`);
  console.log(`CPU per request, Nango / mcp (median of rounds): ${median(costs).toFixed(2)} ` +
              `(range ${Math.min(...costs).toFixed(2)}-${Math.max(...costs).toFixed(2)}; above 1: mcp costs less)`);
} finally {
  await nangoPool.end();
  await mcpPool.end();
}
