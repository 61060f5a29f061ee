-- Credential-encryption benchmark (bench/crypto_bench.sh runs it in a throwaway cluster).
-- Every candidate runs inside one statement over a table of inputs (so the client round trip
-- is not measured), 5 times; the median is reported. IMMUTABLE pgcrypto functions get a column
-- argument, so nothing is constant-folded.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
\set n_fast 100000
\set n_big 20000
\set n_pgp 1000
\set n_api 2000

-- Candidates are registered first and timed together: 5 rounds, each running every
-- candidate once, so a burst of load on the machine hits all of them alike; the median of
-- the 5 times is reported.
CREATE TABLE candidates (size text, op text, method text, calls int, q text);
CREATE FUNCTION bench(size text, op text, method text, calls int, q text) RETURNS void LANGUAGE sql AS $$
    INSERT INTO candidates VALUES (size, op, method, calls, q);
$$;
CREATE TABLE samples (size text, op text, method text, calls int, seconds float8);
CREATE PROCEDURE run_rounds(rounds int) LANGUAGE plpgsql AS $$
DECLARE
    c record;
    t0 timestamptz;
BEGIN
    FOR r IN 1..rounds LOOP
        FOR c IN SELECT * FROM candidates ORDER BY random() LOOP
            t0 := clock_timestamp();
            EXECUTE c.q;
            INSERT INTO samples VALUES (c.size, c.op, c.method, c.calls, extract(epoch FROM clock_timestamp() - t0));
            COMMIT;
        END LOOP;
    END LOOP;
END $$;

-- Inputs: 120-byte and 4 KiB secrets. One narrow table per argument shape and size (suffix
-- _s: 120 B, _l: 4 KiB), columns STORAGE PLAIN, so 4 KiB values are stored inline: no
-- candidate pays a TOAST fetch, and a 120-byte scan never reads 4 KiB rows.
CREATE TABLE src (size text, id int, p text);
INSERT INTO src SELECT '120 B', i, substr(repeat(md5(i::text), 4), 1, 120) FROM generate_series(1, :n_fast) i;
INSERT INTO src SELECT '4 KiB', i, (SELECT substr(string_agg(md5(i::text || g::text), ''), 1, 4096) FROM generate_series(1, 128) g)
  FROM generate_series(1, :n_big) i;
CREATE FUNCTION make_inputs(suffix text, sz text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TABLE in_p_%s (id int, p text, ctx bytea)', suffix);
    EXECUTE format('CREATE TABLE in_b_%s (id int, b bytea)', suffix);
    EXECUTE format('CREATE TABLE in_mcp_%s (id int, c bytea, ctx bytea)', suffix);
    EXECUTE format('CREATE TABLE in_raw_%s (id int, c bytea)', suffix);
    EXECUTE format('CREATE TABLE in_pgp_%s (id int, c bytea)', suffix);
    EXECUTE format('ALTER TABLE in_p_%s ALTER COLUMN p SET STORAGE PLAIN, ALTER COLUMN ctx SET STORAGE PLAIN', suffix);
    EXECUTE format('ALTER TABLE in_b_%s ALTER COLUMN b SET STORAGE PLAIN', suffix);
    EXECUTE format('ALTER TABLE in_mcp_%s ALTER COLUMN c SET STORAGE PLAIN, ALTER COLUMN ctx SET STORAGE PLAIN', suffix);
    EXECUTE format('ALTER TABLE in_raw_%s ALTER COLUMN c SET STORAGE PLAIN', suffix);
    EXECUTE format('INSERT INTO in_p_%s SELECT id, p, mcp.credential_context(gen_random_uuid(), gen_random_uuid(), ''access_token'') FROM src WHERE size = %L', suffix, sz);
    EXECUTE format('INSERT INTO in_b_%s SELECT id, convert_to(p, ''UTF8'') FROM src WHERE size = %L', suffix, sz);
    EXECUTE format('INSERT INTO in_mcp_%s SELECT id, mcp.encrypt(p, ctx), ctx FROM in_p_%s', suffix, suffix);
    EXECUTE format('INSERT INTO in_raw_%s SELECT id, encrypt(b, ''\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'', ''aes'') FROM in_b_%s', suffix, suffix);
    EXECUTE format('INSERT INTO in_pgp_%s SELECT id, pgp_sym_encrypt(p, ''bench-passphrase'') FROM src WHERE size = %L AND id <= 1000', suffix, sz);
END $$;
SELECT make_inputs('s', '120 B');
SELECT make_inputs('l', '4 KiB');
VACUUM ANALYZE;

\o /dev/null
-- the trivial C call: a C function of this library that only reads the envelope header
SELECT bench(s, 'both', 'trivial C call', n, format(
    'SELECT count(mcp_internal.envelope_key_version(c)) FROM in_mcp_%s', t))
  FROM (VALUES ('120 B', 's', :n_fast), ('4 KiB', 'l', :n_big)) v(s, t, n);
-- encrypt
SELECT bench(s, 'encrypt', 'mcp.encrypt (AES-256-GCM)', n, format(
    'SELECT count(mcp.encrypt(p, ctx)) FROM in_p_%s', t))
  FROM (VALUES ('120 B', 's', :n_fast), ('4 KiB', 'l', :n_big)) v(s, t, n);
SELECT bench(s, 'encrypt', 'pgcrypto encrypt (AES-CBC)', n, format(
    'SELECT count(encrypt(b, ''\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'', ''aes'')) FROM in_b_%s', t))
  FROM (VALUES ('120 B', 's', :n_fast), ('4 KiB', 'l', :n_big)) v(s, t, n);
SELECT bench(s, 'encrypt', 'pgcrypto pgp_sym_encrypt', :n_pgp, format(
    'SELECT count(pgp_sym_encrypt(p, ''bench-passphrase'')) FROM in_p_%s WHERE id <= %s', t, :n_pgp))
  FROM (VALUES ('120 B', 's'), ('4 KiB', 'l')) v(s, t);
-- decrypt
SELECT bench(s, 'decrypt', 'mcp.decrypt (AES-256-GCM)', n, format(
    'SELECT count(mcp.decrypt(c, ctx)) FROM in_mcp_%s', t))
  FROM (VALUES ('120 B', 's', :n_fast), ('4 KiB', 'l', :n_big)) v(s, t, n);
SELECT bench(s, 'decrypt', 'pgcrypto decrypt (AES-CBC)', n, format(
    'SELECT count(decrypt(c, ''\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'', ''aes'')) FROM in_raw_%s', t))
  FROM (VALUES ('120 B', 's', :n_fast), ('4 KiB', 'l', :n_big)) v(s, t, n);
SELECT bench(s, 'decrypt', 'pgcrypto pgp_sym_decrypt', :n_pgp, format(
    'SELECT count(pgp_sym_decrypt(c, ''bench-passphrase'')) FROM in_pgp_%s', t))
  FROM (VALUES ('120 B', 's'), ('4 KiB', 'l')) v(s, t);

-- through the credential API as the backend role: set_api_key / store_oauth_tokens write the
-- row, its audit entry and the instance's credentials_updated_at; get_credentials checks the
-- tenant and decrypts every secret of the row.
INSERT INTO mcp.mcp_table (mcp_service_name, display_name, port, type)
VALUES ('bench_gh', 'GitHub', 7501, 'api_key'), ('bench_gm', 'Gmail', 7502, 'oauth');
INSERT INTO mcp.users (id, email) VALUES ('be000000-0000-0000-0000-00000000000a', 'bench@example.com');
UPDATE mcp.user_plans SET plan_type = 'pro', max_instances = NULL WHERE user_id = 'be000000-0000-0000-0000-00000000000a';
INSERT INTO mcp.mcp_service_table (user_id, mcp_service_id, status, custom_name)
SELECT 'be000000-0000-0000-0000-00000000000a', t.mcp_service_id, 'active', t.type || '-' || i
  FROM generate_series(1, :n_api) i, mcp.mcp_table t WHERE t.mcp_service_name IN ('bench_gh', 'bench_gm');
CREATE TABLE api_inputs AS
SELECT s.instance_id, t.type, CASE t.type WHEN 'api_key' THEN '120 B' ELSE '4 KiB' END AS size,
       (SELECT p FROM src i WHERE i.size = CASE t.type WHEN 'api_key' THEN '120 B' ELSE '4 KiB' END
          AND i.id = split_part(s.custom_name, '-', 2)::int) AS p
  FROM mcp.mcp_service_table s JOIN mcp.mcp_table t USING (mcp_service_id)
 WHERE s.user_id = 'be000000-0000-0000-0000-00000000000a';
SET mcp_platform.tenant_scope = session;  -- one connection acts for one tenant
SELECT set_config('mcp.user_id', 'be000000-0000-0000-0000-00000000000a', false);
SELECT count(mcp.set_oauth_client(instance_id, 'client', 'client-secret')) FROM api_inputs WHERE type = 'oauth';
SELECT bench('120 B', 'encrypt', 'mcp.set_api_key (API)', :n_api,
    'SELECT count(mcp.set_api_key(instance_id, p)) FROM api_inputs WHERE type = ''api_key''');
SELECT bench('4 KiB', 'encrypt', 'mcp.store_oauth_tokens (API)', :n_api,
    'SELECT count(mcp.store_oauth_tokens(instance_id, p, NULL, now() + interval ''1 hour'', ''repo'')) FROM api_inputs WHERE type = ''oauth''');
SELECT bench('120 B', 'decrypt', 'mcp.get_credentials (API)', :n_api,
    'SELECT count(c.api_key) FROM api_inputs a, LATERAL mcp.get_credentials(a.instance_id) c WHERE a.type = ''api_key''');
SELECT bench('4 KiB', 'decrypt', 'mcp.get_credentials (API)', :n_api,
    'SELECT count(c.access_token) FROM api_inputs a, LATERAL mcp.get_credentials(a.instance_id) c WHERE a.type = ''oauth''');
-- run every candidate (the API calls use the tenant set above; they are SECURITY DEFINER,
-- so the calling role does not change what they do)
\o
CALL run_rounds(5);
CREATE TABLE results AS
SELECT size, op, method, calls, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS seconds
  FROM samples GROUP BY size, op, method, calls;

\echo
\echo 'calls/s (median of 5 runs) and time ratios (this method''s time per call / the baseline''s; < 1 is faster)'
SELECT r.size, r.op, r.method,
       round(r.calls / r.seconds) AS calls_per_s,
       round((1e6 * r.seconds / r.calls)::numeric, 2) AS us_per_call,
       round(((r.seconds / r.calls) / (raw.seconds / raw.calls))::numeric, 3) AS vs_pgcrypto_raw,
       round(((pgp.seconds / pgp.calls) / (r.seconds / r.calls))::numeric, 1) AS times_faster_than_pgp_sym,
       round(((r.seconds / r.calls) / (triv.seconds / triv.calls))::numeric, 2) AS vs_trivial_c_call
  FROM results r
  JOIN results raw ON raw.size = r.size AND raw.op = r.op AND raw.method LIKE 'pgcrypto % (AES-CBC)'
  JOIN results pgp ON pgp.size = r.size AND pgp.op = r.op AND pgp.method LIKE 'pgcrypto pgp_sym%'
  JOIN results triv ON triv.size = r.size AND triv.method = 'trivial C call'
 ORDER BY r.size, r.op DESC, r.seconds / r.calls;
SELECT size, round(calls / seconds) AS trivial_c_calls_per_s, round((1e6 * seconds / calls)::numeric, 2) AS us_per_call
  FROM results WHERE method = 'trivial C call' ORDER BY size;
