-- ===========================================================================================
-- Token audit log at scale (SPEC §7): writes, daily partitions, retention, the 30-day summary
-- and maintenance. README "Audit log and retention" explains the design; in short:
--
--  * token_audit_log (10_schema.sql) is partitioned by created_at into UTC days named
--    token_audit_log_pYYYYMMDD. Its DEFAULT partition is the safety net: a row whose day has
--    no partition yet lands there, so an insert never fails for want of a partition.
--    mcp.ensure_audit_partitions() creates day partitions for any range (moving rows out of
--    the DEFAULT partition); maintenance keeps mcp_platform.audit_partitions_ahead days made.
--  * mcp.cleanup_old_token_audit_logs() (C, src/pg/audit_retention.cpp) drops whole expired
--    partitions and trims the boundary day with DELETE.
--  * token_audit_summary reads a window table (token_audit_window: the exact aggregate of the
--    rows in [window_lo, window_hi), rebuilt by every maintenance run) plus the raw rows of
--    the short stretches at each end of the window (about one maintenance interval at the
--    start, the time since the last run at the end); when the window table is not
--    valid it sums the daily rollup (token_audit_daily) instead and reads raw the partial
--    boundary day, days changed after they were rolled up ("dirty" days) and the tail since
--    the rollup watermark. Either way it equals the plain 30-day aggregate exactly.
-- ===========================================================================================

-- pg_dump writes every day partition (they are not extension members) with the log's CHECK
-- constraints as pg_get_constraintdef prints them, and restoring attaches them to the log that
-- CREATE EXTENSION made from this script: the two must parse to the same expression. An IN
-- list over varchar does not survive that round trip (it comes back as ARRAY[…::varchar]::text[]
-- and ATTACH refuses it as a "different definition"); a text[] constant does.
ALTER TABLE mcp.token_audit_log
    DROP CONSTRAINT token_audit_log_operation_check,
    ADD CONSTRAINT token_audit_log_operation_check CHECK (operation::text = ANY (
        '{refresh,revoke,validate,set_api_key,set_oauth_client,begin_oauth,complete_oauth,store_tokens,claim_refresh,rotate}'::text[])),
    DROP CONSTRAINT token_audit_log_status_check,
    ADD CONSTRAINT token_audit_log_status_check CHECK (status::text = ANY ('{success,failure,pending}'::text[]));

-- Advisory lock keys (two-int form: class 1835233392 = 'mcpp', then one number per job).
--   1 run_maintenance   2 cleanup   3 partition creation   4 rollup refresh

-- ---- rollup state --------------------------------------------------------------------------

-- One row per (tenant, instance, UTC day, operation, method) for the days before the
-- watermark, maintained by mcp.refresh_audit_rollup(). Only the last 31 days are kept: the
-- summary window is 30 days. Tenant table: RLS like every other one.
CREATE TABLE mcp.token_audit_daily (
    user_id     uuid        NOT NULL,
    day         date        NOT NULL,
    instance_id uuid        NOT NULL,
    operation   varchar(50) NOT NULL,
    method      varchar(50),
    total       bigint      NOT NULL,
    success     bigint      NOT NULL,
    failure     bigint      NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    CONSTRAINT token_audit_daily_key UNIQUE NULLS NOT DISTINCT (user_id, day, instance_id, operation, method),
    CONSTRAINT token_audit_daily_counts_check CHECK (total > 0 AND success >= 0 AND failure >= 0
                                                     AND success + failure <= total)
);
CREATE INDEX token_audit_daily_day_idx ON mcp.token_audit_daily (day);

-- The rollup covers every UTC day before `watermark` (no row: nothing rolled up yet).
-- token_audit_window holds the exact aggregate of the log's rows with created_at in
-- [window_lo, window_hi) (NULL: no valid window table), built when the dirty marks of its days
-- were window_marks ({"day": gen}); see mcp.audit_window_valid().
CREATE TABLE mcp.token_audit_rollup_state (
    singleton    boolean     NOT NULL DEFAULT true,
    watermark    date        NOT NULL,
    window_lo    timestamptz,
    window_hi    timestamptz,
    window_marks jsonb,
    CONSTRAINT token_audit_rollup_state_pkey PRIMARY KEY (singleton),
    CONSTRAINT token_audit_rollup_state_singleton CHECK (singleton)
);

-- The 30-day window's aggregate per (tenant, instance, operation, method) over
-- [window_lo, window_hi): one row per group (with its success rate computed once), so the
-- summary reads one row per group plus the raw rows at each end. Rebuilt by every maintenance
-- run; valid while the window's start has not passed window_lo (one maintenance interval and
-- five minutes after the rebuild) and no row before window_hi changed since
-- (mcp.audit_window_valid()). Otherwise the summary sums the daily rollup instead (same
-- result, slower).
CREATE TABLE mcp.token_audit_window (
    user_id     uuid        NOT NULL,
    instance_id uuid        NOT NULL,
    operation   varchar(50) NOT NULL,
    method      varchar(50),
    total       bigint      NOT NULL,
    success     bigint      NOT NULL,
    failure     bigint      NOT NULL,
    first_at    timestamptz NOT NULL,
    last_at     timestamptz NOT NULL,
    success_rate numeric    NOT NULL,
    CONSTRAINT token_audit_window_key UNIQUE NULLS NOT DISTINCT (user_id, instance_id, operation, method)
);

-- Days whose raw rows changed after they may have been rolled up (a late insert, a delete,
-- an update; the trigger below marks them). The summary reads such days from the raw log
-- until maintenance recomputes them. `gen` (a new number from the sequence at every mark)
-- lets maintenance clear a mark only if nobody marked the day again while it was recomputing,
-- and lets the window table tell the marks it has seen from newer ones.
CREATE SEQUENCE mcp.token_audit_mark_gen;
CREATE TABLE mcp.token_audit_dirty_days (
    day       date        NOT NULL,
    gen       bigint      NOT NULL DEFAULT nextval('mcp.token_audit_mark_gen'),
    marked_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT token_audit_dirty_days_pkey PRIMARY KEY (day)
);

SELECT mcp._make_tenant_table(t)
  FROM unnest(ARRAY['mcp.token_audit_daily', 'mcp.token_audit_window']::regclass[]) AS t;

-- Rows per UTC day of the log, recorded when maintenance rolls the day up and recounted when a
-- row of the day changes later (a dirty mark), so that retention returns an exact count
-- without counting the partitions it drops. Retention trusts a day's count only while the day
-- has no dirty mark (src/pg/audit_retention.cpp). Totals across tenants: not a tenant table;
-- only the extension's SECURITY DEFINER functions read or write it.
CREATE TABLE mcp.token_audit_day_rows (
    day       date   NOT NULL,
    row_count bigint NOT NULL,
    CONSTRAINT token_audit_day_rows_pkey PRIMARY KEY (day),
    CONSTRAINT token_audit_day_rows_count_check CHECK (row_count >= 0)
);

-- Marks the UTC day of the changed row dirty (C, src/pg/audit_rollup.cpp), for the rows that
-- maintenance may already have summed up without them (WHEN clauses below):
--  * created_at before the writing transaction's start (now()): the window table
--    (mcp.refresh_audit_window) sums rows before window_hi, which is never later than the
--    start of any transaction running while it is built, nor than the build itself; a row of
--    the window that such a transaction writes is therefore older than that transaction's
--    start. A normal audit insert has created_at = now() and never reaches the function (nor
--    does a transaction that straddles an hour or a day boundary with it);
--  * created_at before today (UTC, by the clock): the daily rollup sums days that are over; a
--    transaction that began before midnight and writes a row of that day after maintenance
--    summed the day up must mark it.
CREATE FUNCTION mcp.token_audit_mark_dirty() RETURNS trigger
    AS 'MODULE_PATHNAME', 'mcp_token_audit_mark_dirty'
    LANGUAGE C SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
CREATE TRIGGER token_audit_log_dirty_insert AFTER INSERT ON mcp.token_audit_log
    FOR EACH ROW WHEN (NEW.created_at < pg_catalog.now()
                       OR NEW.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();
CREATE TRIGGER token_audit_log_dirty_delete AFTER DELETE ON mcp.token_audit_log
    FOR EACH ROW WHEN (OLD.created_at < pg_catalog.now()
                       OR OLD.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();
CREATE TRIGGER token_audit_log_dirty_update AFTER UPDATE ON mcp.token_audit_log
    FOR EACH ROW WHEN (OLD.created_at < pg_catalog.now() OR NEW.created_at < pg_catalog.now()
                       OR OLD.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC')
                       OR NEW.created_at < pg_catalog.date_trunc('day', pg_catalog.clock_timestamp(), 'UTC'))
    EXECUTE FUNCTION mcp.token_audit_mark_dirty();

-- TRUNCATE of the log empties the rollup too.
CREATE FUNCTION mcp.token_audit_truncated() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM mcp.token_audit_daily;
    DELETE FROM mcp.token_audit_window;
    DELETE FROM mcp.token_audit_dirty_days;
    DELETE FROM mcp.token_audit_day_rows;
    DELETE FROM mcp.token_audit_rollup_state;
    RETURN NULL;
END
$$;
CREATE TRIGGER token_audit_log_truncate AFTER TRUNCATE ON mcp.token_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mcp.token_audit_truncated();

-- Audit rows are append-only for the roles: corrections would silently rewrite history.
REVOKE UPDATE ON mcp.token_audit_log FROM mcp_admin;

-- ---- writing -------------------------------------------------------------------------------

-- Writes one audit row; the user is derived from the instance (which must belong to the
-- current tenant), never taken from the caller. The row lands in its day's partition, or in
-- the DEFAULT partition when that day has none yet: it never fails for want of a partition.
CREATE FUNCTION mcp.log_token_operation(
    instance_id uuid, operation text, status text, method text DEFAULT NULL,
    error_type text DEFAULT NULL, error_message text DEFAULT NULL,
    metadata jsonb DEFAULT '{}'::jsonb) RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant uuid := mcp._require_tenant();
    owner uuid;
    meta jsonb := coalesce(metadata, '{}'::jsonb);
    new_id bigint;
BEGIN
    IF log_token_operation.instance_id IS NULL THEN
        RAISE EXCEPTION 'instance_id must not be null' USING ERRCODE = '22023';
    END IF;
    IF operation IS NULL OR operation NOT IN ('refresh', 'revoke', 'validate', 'set_api_key',
            'set_oauth_client', 'begin_oauth', 'complete_oauth', 'store_tokens', 'claim_refresh',
            'rotate') THEN
        RAISE EXCEPTION 'invalid audit operation' USING ERRCODE = '22023',
            DETAIL = 'operation must be one of refresh, revoke, validate, set_api_key, '
                     'set_oauth_client, begin_oauth, complete_oauth, store_tokens, claim_refresh, rotate.';
    END IF;
    IF status IS NULL OR status NOT IN ('success', 'failure', 'pending') THEN
        RAISE EXCEPTION 'invalid audit status' USING ERRCODE = '22023',
            DETAIL = 'status must be one of success, failure, pending.';
    END IF;
    IF length(method) > 50 THEN
        RAISE EXCEPTION 'audit method longer than 50 characters' USING ERRCODE = '22023';
    END IF;
    IF length(error_type) > 100 THEN
        RAISE EXCEPTION 'audit error type longer than 100 characters' USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(meta) <> 'object' THEN
        RAISE EXCEPTION 'audit metadata must be a json object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(meta::text) > 8192 THEN
        RAISE EXCEPTION 'audit metadata larger than 8192 bytes' USING ERRCODE = '22023';
    END IF;
    SELECT s.user_id INTO owner FROM mcp.mcp_service_table s
     WHERE s.user_id = tenant AND s.instance_id = log_token_operation.instance_id;
    IF owner IS NULL THEN
        RAISE EXCEPTION 'instance % does not belong to the current tenant', log_token_operation.instance_id
            USING ERRCODE = '42501';
    END IF;
    -- A provider's error text can be long: keep the first 1000 characters rather than lose
    -- the event.
    INSERT INTO mcp.token_audit_log AS l (instance_id, user_id, operation, status, method,
                                          error_type, error_message, metadata)
    VALUES (log_token_operation.instance_id, owner, operation, status, method, error_type,
            left(error_message, 1000), meta)
    RETURNING l.audit_id INTO new_id;
    RETURN new_id;
END
$$;

-- ---- partitions ----------------------------------------------------------------------------

-- Creates the daily partitions covering [from_ts, to_ts] (UTC days, both ends included) that
-- do not exist yet, moving any rows of those days out of the DEFAULT partition; returns how
-- many it created. Past or future. A new partition is built detached (CREATE TABLE … LIKE)
-- and then attached: ATTACH takes only SHARE UPDATE EXCLUSIVE on the log, so inserts into
-- other days never wait for it.
CREATE FUNCTION mcp.ensure_audit_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d date;
    last_day date;
    pname text;
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL OR NOT isfinite(from_ts) OR NOT isfinite(to_ts) THEN
        RAISE EXCEPTION 'partition range must be finite and not null' USING ERRCODE = '22023';
    END IF;
    IF from_ts > to_ts THEN
        RAISE EXCEPTION 'partition range starts after it ends' USING ERRCODE = '22023';
    END IF;
    d := (from_ts AT TIME ZONE 'UTC')::date;
    last_day := (to_ts AT TIME ZONE 'UTC')::date;
    IF last_day - d > 3660 THEN
        RAISE EXCEPTION 'partition range longer than 3660 days' USING ERRCODE = '22023';
    END IF;
    PERFORM pg_advisory_xact_lock(1835233392, 3);
    WHILE d <= last_day LOOP
        pname := 'token_audit_log_p' || to_char(d, 'YYYYMMDD');
        IF to_regclass('mcp.' || quote_ident(pname)) IS NULL THEN
            lo := d::timestamp AT TIME ZONE 'UTC';
            hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
            EXECUTE format('CREATE TABLE mcp.%I (LIKE mcp.token_audit_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', pname);
            -- No row of this day may reach the DEFAULT partition between the move and the
            -- attach (ATTACH locks it anyway, so this costs nothing more).
            LOCK TABLE mcp.token_audit_log_default IN EXCLUSIVE MODE;
            EXECUTE format('WITH moved AS (DELETE FROM mcp.token_audit_log_default '
                           'WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                           'INSERT INTO mcp.%I SELECT * FROM moved', pname) USING lo, hi;
            EXECUTE format('ALTER TABLE mcp.token_audit_log ATTACH PARTITION mcp.%I FOR VALUES FROM (%L) TO (%L)',
                           pname, lo, hi);
            created := created + 1;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN created;
END
$$;

-- ---- retention (C) -------------------------------------------------------------------------

-- Removes audit rows older than `retention` (NULL: the mcp_platform.audit_retention setting,
-- default 90 days) and returns how many: expired day partitions are dropped whole (their rows
-- counted under lock first), the boundary day is trimmed with DELETE — or, with
-- trim_boundary = false, left whole until it has expired entirely (no row is deleted one by
-- one; rows live up to a day longer than the retention). See src/pg/audit_retention.cpp for the locking.
CREATE FUNCTION mcp.cleanup_old_token_audit_logs(retention interval DEFAULT NULL, trim_boundary boolean DEFAULT true)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'mcp_cleanup_old_token_audit_logs'
    LANGUAGE C VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp;

-- ---- rollup and summary --------------------------------------------------------------------

-- Start of the first day not covered by the rollup ('-infinity': nothing rolled up yet).
CREATE FUNCTION mcp.audit_rollup_watermark() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s.watermark::timestamp AT TIME ZONE 'UTC' FROM mcp.token_audit_rollup_state s),
                    '-infinity'::timestamptz)
$$;

-- Whether token_audit_window can serve the current window [now() - 30 days, now()]: it starts
-- inside it, and every dirty mark of its days is one it was built with (a row of those days
-- changed since makes a new mark).
CREATE FUNCTION mcp.audit_window_valid() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((
        SELECT s.window_lo >= now() - interval '30 days'
           AND s.window_hi <= now()
           AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x
                            WHERE x.day >= (s.window_lo AT TIME ZONE 'UTC')::date
                              AND x.day <= (s.window_hi AT TIME ZONE 'UTC')::date
                              AND (s.window_marks ->> x.day::text)::bigint IS DISTINCT FROM x.gen)
          FROM mcp.token_audit_rollup_state s), false)
$$;

-- Recomputes one day of the rollup from the raw log.
CREATE FUNCTION mcp.audit_rollup_day(d date) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM mcp.token_audit_daily WHERE day = d;
    INSERT INTO mcp.token_audit_daily (user_id, day, instance_id, operation, method, total, success,
                                       failure, first_at, last_at)
    SELECT l.user_id, d, l.instance_id, l.operation, l.method, count(*),
           count(*) FILTER (WHERE l.status = 'success'), count(*) FILTER (WHERE l.status = 'failure'),
           min(l.created_at), max(l.created_at)
      FROM mcp.token_audit_log l
     WHERE l.created_at >= d::timestamp AT TIME ZONE 'UTC'
       AND l.created_at < (d + 1)::timestamp AT TIME ZONE 'UTC'
     GROUP BY l.user_id, l.instance_id, l.operation, l.method;
    INSERT INTO mcp.token_audit_day_rows AS c (day, row_count)
    SELECT d, coalesce(sum(r.total), 0) FROM mcp.token_audit_daily r WHERE r.day = d
        ON CONFLICT (day) DO UPDATE SET row_count = excluded.row_count;
$$;

-- Recounts the rows of one day older than the rollup's 31 days (a late change to an old day).
CREATE FUNCTION mcp.audit_count_day(d date) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO mcp.token_audit_day_rows AS c (day, row_count)
    SELECT d, count(*) FROM mcp.token_audit_log l
     WHERE l.created_at >= d::timestamp AT TIME ZONE 'UTC'
       AND l.created_at < (d + 1)::timestamp AT TIME ZONE 'UTC'
        ON CONFLICT (day) DO UPDATE SET row_count = excluded.row_count;
$$;

-- Brings the rollup up to date: recomputes dirty days, then rolls up every day that is over
-- (UTC) and not rolled up yet, within the last 31 days. Returns the number of days computed.
CREATE FUNCTION mcp.refresh_audit_rollup() RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    horizon date := today - 31;
    wm date;
    d date;
    g bigint;
    n integer := 0;
    pname text;
BEGIN
    PERFORM pg_advisory_xact_lock(1835233392, 4);
    SELECT s.watermark INTO wm FROM mcp.token_audit_rollup_state s;

    -- Older than the window: the summary never reads these days again.
    DELETE FROM mcp.token_audit_daily WHERE day < horizon;

    -- 0. Old days changed since they were counted: only their row counts matter (retention).
    --    A mark is cleared only if its generation is unchanged: a concurrent writer re-marking
    --    the day keeps it dirty (and it is recounted next time).
    FOR d, g IN SELECT x.day, x.gen FROM mcp.token_audit_dirty_days x WHERE x.day < horizon ORDER BY x.day LOOP
        PERFORM mcp.audit_count_day(d);
        DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
    END LOOP;

    -- 1. Days changed after they were rolled up (same rule for the marks).
    IF wm IS NOT NULL THEN
        FOR d, g IN SELECT x.day, x.gen FROM mcp.token_audit_dirty_days x
                     WHERE x.day >= horizon AND x.day < wm ORDER BY x.day LOOP
            PERFORM mcp.audit_rollup_day(d);
            DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
            n := n + 1;
        END LOOP;
    END IF;

    -- 2. Advance over the days that are over.
    IF wm IS NULL THEN
        SELECT (min(l.created_at) AT TIME ZONE 'UTC')::date INTO wm FROM mcp.token_audit_log l;
        wm := coalesce(least(wm, today), today);
    END IF;
    wm := greatest(wm, horizon);
    d := wm;
    WHILE d < today LOOP
        -- A transaction that began before midnight may still be writing rows of day d (its
        -- now() is yesterday, so the dirty trigger does not fire): wait for such writers by
        -- taking SHARE on the day's partition and on the DEFAULT partition.
        pname := 'token_audit_log_p' || to_char(d, 'YYYYMMDD');
        BEGIN
            SET LOCAL lock_timeout = '1s';
            IF to_regclass('mcp.' || quote_ident(pname)) IS NOT NULL THEN
                EXECUTE format('LOCK TABLE mcp.%I IN SHARE MODE', pname);
            END IF;
            LOCK TABLE mcp.token_audit_log_default IN SHARE MODE;
        EXCEPTION WHEN lock_not_available THEN
            RAISE WARNING 'audit rollup stops before % (a writer of that day is still running)', d;
            EXIT;
        END;
        -- a mark of this day, read before the day is computed, is cleared after (see 1.)
        g := NULL;
        SELECT x.gen INTO g FROM mcp.token_audit_dirty_days x WHERE x.day = d;
        PERFORM mcp.audit_rollup_day(d);
        IF g IS NOT NULL THEN
            DELETE FROM mcp.token_audit_dirty_days x WHERE x.day = d AND x.gen = g;
        END IF;
        n := n + 1;
        d := d + 1;
    END LOOP;
    INSERT INTO mcp.token_audit_rollup_state AS s (singleton, watermark) VALUES (true, d)
        ON CONFLICT (singleton) DO UPDATE SET watermark = excluded.watermark;

    -- 3. The window table.
    PERFORM mcp.refresh_audit_window();
    RETURN n;
END
$$;

-- Rebuilds token_audit_window: the exact aggregate of the rows in [window_lo, window_hi), where
-- window_lo is the start of the current 30-day window plus the maintenance interval
-- (mcp_platform.maintenance_interval; one hour when it is 0 or unknown) plus five minutes, so
-- the table serves the summary until after the next run, and window_hi is ten seconds ago, or
-- the start of the oldest transaction running in this database if that is earlier (its rows,
-- not visible yet, carry its start time): every row before window_hi is then visible here or
-- makes a dirty mark when it arrives (see the triggers above; the ten seconds cover a
-- transaction that has taken its start time but is not in pg_stat_activity yet). Whole clean
-- days come from the daily rollup, the rest from the raw log.
-- Returns whether the table was built; when it cannot be (not READ COMMITTED, a prepared
-- transaction in this database), it is marked invalid instead and the summary takes the slower
-- path. Called by mcp.refresh_audit_rollup(), under its lock.
CREATE FUNCTION mcp.refresh_audit_window() RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t timestamptz := clock_timestamp();
    margin interval := interval '1 hour';
    oldest timestamptz;
    lo timestamptz;
    hi timestamptz;
    lo_day date;
    hi_day date;
    wm date;
    marks jsonb;
    raw_ranges tstzrange[];
    raw_sql text := '';
    r tstzrange;
    d date;
BEGIN
    DELETE FROM mcp.token_audit_window;
    UPDATE mcp.token_audit_rollup_state SET window_lo = NULL, window_hi = NULL, window_marks = NULL;
    SELECT s.watermark INTO wm FROM mcp.token_audit_rollup_state s;
    -- Each statement below must see what committed before it (READ COMMITTED), and every
    -- writer must be a backend we can see.
    IF wm IS NULL OR current_setting('transaction_isolation') <> 'read committed'
       OR EXISTS (SELECT 1 FROM pg_prepared_xacts p WHERE p.database = current_database()) THEN
        RETURN false;
    END IF;
    PERFORM pg_stat_clear_snapshot();
    SELECT min(a.xact_start) INTO oldest FROM pg_stat_activity a
     WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
       AND a.backend_type <> 'autovacuum worker';
    -- the interval as the server shows it ('1h', '15min', '0'): NULL when the library has not
    -- defined the setting yet
    IF coalesce(current_setting('mcp_platform.maintenance_interval', true), '') ~ '^[0-9]+ ?(s|min|h|d)?$'
       AND current_setting('mcp_platform.maintenance_interval', true)::interval > interval '0' THEN
        margin := current_setting('mcp_platform.maintenance_interval', true)::interval;
    END IF;
    lo := t - interval '30 days' + margin + interval '5 minutes';
    hi := least(t - interval '10 seconds', oldest);
    IF hi < lo THEN
        RETURN false;
    END IF;
    lo_day := (lo AT TIME ZONE 'UTC')::date;
    hi_day := (hi AT TIME ZONE 'UTC')::date;
    -- The marks first: a mark made after this point is one the window has not seen.
    SELECT coalesce(jsonb_object_agg(x.day::text, x.gen), '{}') INTO marks
      FROM mcp.token_audit_dirty_days x WHERE x.day >= lo_day AND x.day <= hi_day;
    -- raw: lo's (partial) day, the dirty days after it, and from the watermark (or the day
    -- after lo's) to hi; each range is a constant in the query, so only its partitions are read
    raw_ranges := ARRAY[tstzrange(lo, least((lo_day + 1)::timestamp AT TIME ZONE 'UTC', hi), '[)')];
    FOR d IN SELECT k::date FROM jsonb_object_keys(marks) AS k ORDER BY 1 LOOP
        IF d > lo_day AND d < least(hi_day, wm) THEN
            raw_ranges := raw_ranges || tstzrange(d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC', '[)');
        END IF;
    END LOOP;
    IF greatest(least(wm, hi_day), lo_day + 1)::timestamp AT TIME ZONE 'UTC' < hi THEN
        raw_ranges := raw_ranges || tstzrange(greatest(least(wm, hi_day), lo_day + 1)::timestamp AT TIME ZONE 'UTC', hi, '[)');
    END IF;
    FOREACH r IN ARRAY raw_ranges LOOP
        CONTINUE WHEN isempty(r);
        raw_sql := raw_sql || format(
            ' UNION ALL SELECT l.user_id, l.instance_id, l.operation, l.method, count(*), '
            'count(*) FILTER (WHERE l.status = ''success''), count(*) FILTER (WHERE l.status = ''failure''), '
            'min(l.created_at), max(l.created_at) FROM mcp.token_audit_log l '
            'WHERE l.created_at >= %L AND l.created_at < %L GROUP BY 1, 2, 3, 4', lower(r), upper(r));
    END LOOP;
    -- plus the rollup: whole days after lo's day, before hi's day and the watermark, not dirty;
    -- summed to one row per group
    EXECUTE 'INSERT INTO mcp.token_audit_window (user_id, instance_id, operation, method, total, success, '
            'failure, first_at, last_at, success_rate) '
            'SELECT p.user_id, p.instance_id, p.operation, p.method, sum(p.total), sum(p.success), '
            'sum(p.failure), min(p.first_at), max(p.last_at), round(100.0 * sum(p.success) / sum(p.total), 2) FROM ('
            'SELECT r.user_id, r.instance_id, r.operation, r.method, r.total, r.success, r.failure, '
            'r.first_at, r.last_at FROM mcp.token_audit_daily r '
            'WHERE r.day > $1 AND r.day < $2 AND NOT $3 ? r.day::text' || raw_sql || ') '
            'AS p (user_id, instance_id, operation, method, total, success, failure, first_at, last_at) '
            'GROUP BY p.user_id, p.instance_id, p.operation, p.method'
      USING lo_day, least(hi_day, wm), marks;
    UPDATE mcp.token_audit_rollup_state SET window_lo = lo, window_hi = hi, window_marks = marks;
    RETURN true;
END
$$;

-- A row of token_audit_summary, as both of its branches return it.
CREATE TYPE mcp.token_audit_summary_row AS (
    instance_id uuid, user_id uuid, operation varchar, method varchar, total_operations bigint,
    success_count bigint, failure_count bigint, success_rate numeric,
    first_operation_at timestamptz, last_operation_at timestamptz);

-- The rows of the summary while the window table is valid (C, src/pg/audit_summary.cpp): the
-- window table's rows, each merged with the group of the raw rows of [now() - 30 days,
-- window_lo) and [window_hi, ∞) that it has (one query over the log, its time ranges bound as
-- constants), plus the raw groups without a window row. SECURITY INVOKER: the caller's RLS
-- applies to both.
CREATE FUNCTION mcp.audit_summary_windowed() RETURNS SETOF mcp.token_audit_summary_row
    AS 'MODULE_PATHNAME', 'mcp_audit_summary_windowed'
    LANGUAGE C STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp;

-- The raw-log parts of the summary when the window table is not valid (see the view below),
-- each aggregated per group. Each part is planned with its own time range as constants, so
-- only the one or two partitions it reads are planned (the view would otherwise plan every
-- partition of the log for every part).
-- SECURITY INVOKER: the log's RLS applies to the caller.
CREATE FUNCTION mcp.audit_summary_raw_parts()
    RETURNS TABLE (instance_id uuid, user_id uuid, operation varchar, method varchar, total bigint,
                   success bigint, failure bigint, first_at timestamptz, last_at timestamptz)
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo timestamptz := now() - interval '30 days';
    lo_day_end timestamptz := date_trunc('day', now() - interval '30 days', 'UTC') + interval '24 hours';
    wm timestamptz := mcp.audit_rollup_watermark();
    part constant text :=
        'SELECT l.instance_id, l.user_id, l.operation, l.method, count(*), '
        'count(*) FILTER (WHERE l.status = ''success''), count(*) FILTER (WHERE l.status = ''failure''), '
        'min(l.created_at), max(l.created_at) FROM mcp.token_audit_log l '
        'WHERE l.created_at >= %L AND l.created_at < %L GROUP BY 1, 2, 3, 4';
    d date;
BEGIN
    -- edge: the boundary day from the window start on, below the watermark
    IF least(lo_day_end, wm) > lo THEN
        RETURN QUERY EXECUTE format(part, lo, least(lo_day_end, wm));
    END IF;
    -- dirty days inside the rolled-up range
    FOR d IN SELECT x.day FROM mcp.token_audit_dirty_days x
              WHERE x.day > (lo AT TIME ZONE 'UTC')::date AND x.day < (wm AT TIME ZONE 'UTC')::date
              ORDER BY x.day LOOP
        RETURN QUERY EXECUTE format(part, d::timestamp AT TIME ZONE 'UTC', (d + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    -- tail: from the watermark (or the window start) on
    RETURN QUERY EXECUTE format(part, greatest(lo, wm), 'infinity'::timestamptz);
END
$$;

-- The rows of the summary when the window table is not valid: the daily rollup plus the raw
-- parts, summed per group. SECURITY INVOKER (RLS of the caller).
CREATE FUNCTION mcp.audit_summary_from_rollup() RETURNS SETOF mcp.token_audit_summary_row
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
SELECT p.instance_id, p.user_id, p.operation, p.method, sum(p.total)::bigint,
       sum(p.success)::bigint, sum(p.failure)::bigint,
       round(100.0 * sum(p.success) / sum(p.total), 2), min(p.first_at), max(p.last_at)
  FROM (SELECT r.instance_id, r.user_id, r.operation, r.method, r.total, r.success, r.failure,
               r.first_at, r.last_at
          FROM mcp.token_audit_daily r
         WHERE r.day > ((now() - interval '30 days') AT TIME ZONE 'UTC')::date
           AND r.day < (mcp.audit_rollup_watermark() AT TIME ZONE 'UTC')::date
           AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x WHERE x.day = r.day)
        UNION ALL
        SELECT q.instance_id, q.user_id, q.operation, q.method, q.total, q.success, q.failure,
               q.first_at, q.last_at
          FROM mcp.audit_summary_raw_parts() q) AS p
 GROUP BY p.instance_id, p.user_id, p.operation, p.method
$$;

-- 30-day operation statistics (security_invoker: RLS shows the current tenant's rows only).
-- Equal to the plain aggregate
--     SELECT instance_id, user_id, operation, method, count(*), … FROM mcp.token_audit_log
--      WHERE created_at >= now() - interval '30 days' GROUP BY 1, 2, 3, 4
-- and built from disjoint parts of the window [now() - 30 days, now()], in one of two ways
-- (only the branch whose condition holds runs):
-- When the window table is valid (mcp.audit_window_valid()), mcp.audit_summary_windowed():
--   window  one row per group for [window_lo, window_hi), from token_audit_window, merged with
--   raw     the groups of the raw rows of [now() - 30 days, window_lo) and from window_hi on
-- Otherwise, summed per group:
--   rollup  the whole days after the boundary day and before the watermark, not dirty, from
--           the daily rollup
--   edge    raw rows of the boundary day from now() - 30 days on (below the watermark)
--   dirty   raw rows of dirty days inside the rolled-up range
--   tail    raw rows from the watermark (or the window start) on
-- (the raw parts from mcp.audit_summary_raw_parts()).
-- Both branches are functions, so the view costs next to nothing to plan, and only the branch
-- whose condition holds runs.
CREATE VIEW mcp.token_audit_summary WITH (security_invoker = true) AS
SELECT s.instance_id, s.user_id, s.operation, s.method, s.total_operations, s.success_count,
       s.failure_count, s.success_rate, s.first_operation_at, s.last_operation_at
  FROM mcp.audit_summary_windowed() s
 WHERE (SELECT mcp.audit_window_valid())
UNION ALL
SELECT r.instance_id, r.user_id, r.operation, r.method, r.total_operations, r.success_count,
       r.failure_count, r.success_rate, r.first_operation_at, r.last_operation_at
  FROM mcp.audit_summary_from_rollup() r
 WHERE NOT (SELECT mcp.audit_window_valid());

-- ---- maintenance ---------------------------------------------------------------------------

-- One maintenance pass: instance expiry (mcp.expire_instances()), the legacy service counters
-- of mcp_table (mcp.refresh_service_stats()), rollup upkeep, partition upkeep (rows of the DEFAULT partition moved into
-- their days, mcp_platform.audit_partitions_ahead days made ahead) and retention. Safe to run
-- concurrently with itself: a second caller returns at once with "skipped": true.
-- Maintenance never makes an application transaction wait for long, nor closes a deadlock cycle
-- with one: a lock it cannot get within lock_timeout fails this run (the worker logs it and
-- tries again at its next interval) before the deadlock detector would pick a victim.
CREATE FUNCTION mcp.run_maintenance() RETURNS jsonb
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '500ms'
AS $$
DECLARE
    ahead integer := coalesce(nullif(current_setting('mcp_platform.audit_partitions_ahead', true), '')::integer, 7);
    lo timestamptz;
    hi timestamptz;
    created integer := 0;
    rolled integer;
    expired bigint;
    services bigint;
    removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1835233392, 1) THEN
        RETURN jsonb_build_object('skipped', true);
    END IF;
    expired := mcp.expire_instances();
    services := mcp.refresh_service_stats();
    rolled := mcp.refresh_audit_rollup();
    -- Creating a partition locks the DEFAULT partition until commit, and cleanup locks the
    -- whole log until commit: both come last, so they are held only for a moment.
    SELECT min(l.created_at), max(l.created_at) INTO lo, hi FROM mcp.token_audit_log_default l;
    IF lo IS NOT NULL THEN
        created := created + mcp.ensure_audit_partitions(lo, hi);
    END IF;
    created := created + mcp.ensure_audit_partitions(now(), now() + make_interval(days => ahead));
    removed := mcp.cleanup_old_token_audit_logs(NULL,
        coalesce(nullif(current_setting('mcp_platform.audit_retention_trim', true), ''), 'on')::boolean);
    RETURN jsonb_build_object('skipped', false, 'partitions_created', created, 'rollup_days', rolled,
                              'expired_instances', expired, 'services_refreshed', services,
                              'removed_audit_rows', removed);
END
$$;

-- ---- privileges and backup -----------------------------------------------------------------
REVOKE ALL ON mcp.token_audit_daily, mcp.token_audit_window, mcp.token_audit_rollup_state,
    mcp.token_audit_dirty_days, mcp.token_audit_day_rows FROM PUBLIC;
REVOKE ALL ON FUNCTION mcp.log_token_operation(uuid, text, text, text, text, text, jsonb),
    mcp.ensure_audit_partitions(timestamptz, timestamptz), mcp.cleanup_old_token_audit_logs(interval, boolean),
    mcp.audit_rollup_watermark(), mcp.audit_window_valid(), mcp.audit_summary_raw_parts(), mcp.audit_summary_windowed(), mcp.audit_summary_from_rollup(),
    mcp.audit_rollup_day(date), mcp.audit_count_day(date),
    mcp.refresh_audit_rollup(), mcp.refresh_audit_window(),
    mcp.run_maintenance(), mcp.token_audit_mark_dirty(), mcp.token_audit_truncated() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mcp.log_token_operation(uuid, text, text, text, text, text, jsonb)
    TO mcp_app, mcp_admin;
-- The summary is security_invoker: its readers need the rollup (RLS) and its bookkeeping.
GRANT SELECT ON mcp.token_audit_daily, mcp.token_audit_window, mcp.token_audit_rollup_state,
    mcp.token_audit_dirty_days TO mcp_app, mcp_admin;
GRANT EXECUTE ON FUNCTION mcp.audit_rollup_watermark(), mcp.audit_window_valid(),
    mcp.audit_summary_raw_parts(), mcp.audit_summary_windowed(), mcp.audit_summary_from_rollup() TO mcp_app, mcp_admin;
GRANT SELECT ON mcp.token_audit_summary TO mcp_app, mcp_admin;
-- Retention and partitions are the platform operator's.
GRANT EXECUTE ON FUNCTION mcp.ensure_audit_partitions(timestamptz, timestamptz),
    mcp.cleanup_old_token_audit_logs(interval, boolean), mcp.refresh_audit_rollup(), mcp.run_maintenance()
    TO mcp_admin;

SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_daily', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_window', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_rollup_state', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_dirty_days', '');
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_day_rows', '');
-- the mark generations go on from where they were (the window table compares them)
SELECT pg_catalog.pg_extension_config_dump('mcp.token_audit_mark_gen', '');
