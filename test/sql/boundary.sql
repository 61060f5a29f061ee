-- The C++/Postgres boundary on a live server (src/pg/boundary.hpp).
-- The test-only C functions (src/pg/selftest.cpp) are in no install script: declared here,
-- in a schema of their own, and dropped at the end.
CREATE SCHEMA mcp_test;
CREATE FUNCTION mcp_test.cpp_error(sqlstate text) RETURNS void
    AS '$libdir/mcp_platform', 'mcp_test_cpp_error' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp_test.cpp_unknown_error() RETURNS void
    AS '$libdir/mcp_platform', 'mcp_test_cpp_unknown_error' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp_test.pg_error_under_cpp(divisor integer) RETURNS integer
    AS '$libdir/mcp_platform', 'mcp_test_pg_error_under_cpp' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp_test.destructor_runs() RETURNS bigint
    AS '$libdir/mcp_platform', 'mcp_test_destructor_runs' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp_test.cpp_error_in_guard(sqlstate text) RETURNS void
    AS '$libdir/mcp_platform', 'mcp_test_cpp_error_in_guard' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp_test.return_inside_pg_try() RETURNS integer
    AS '$libdir/mcp_platform', 'mcp_test_return_inside_pg_try' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION mcp_test.cpp_error(text), mcp_test.cpp_unknown_error(),
    mcp_test.pg_error_under_cpp(integer), mcp_test.destructor_runs(),
    mcp_test.cpp_error_in_guard(text), mcp_test.return_inside_pg_try() FROM PUBLIC;
GRANT USAGE ON SCHEMA mcp_test TO mcp_app;
SELECT pg_backend_pid() AS backend_pid \gset

-- 1. A C++ SqlError surfaces as an ERROR with its own SQLSTATE; the session keeps working.
\set VERBOSITY default
SELECT mcp_test.cpp_error('MC103');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.cpp_error('22023');
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS session_still_works;

-- Inside a transaction the error aborts it like any Postgres error, and ROLLBACK recovers.
BEGIN;
SELECT mcp_test.cpp_error('MC001');
\echo :LAST_ERROR_SQLSTATE
SELECT 1;
ROLLBACK;

-- Caught by PL/pgSQL like any other error, SQLSTATE intact.
DO $$
BEGIN
    PERFORM mcp_test.cpp_error('MC202');
EXCEPTION WHEN SQLSTATE 'MC202' THEN
    RAISE NOTICE 'caught MC202 in plpgsql';
END
$$;

-- 2. A non-SqlError C++ exception becomes XX000, never a crash.
SELECT mcp_test.cpp_unknown_error();
\echo :LAST_ERROR_SQLSTATE

-- 3. A Postgres ERROR raised under a live C++ object runs that object's destructor
--    (the counter counts destructor runs in this backend) and keeps its SQLSTATE (22012).
SELECT mcp_test.destructor_runs() AS before \gset
SELECT mcp_test.pg_error_under_cpp(0);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.destructor_runs() - :before AS destructors_run_after_pg_error;
-- The normal path also runs it exactly once.
SELECT mcp_test.pg_error_under_cpp(1) AS one_over_one;
SELECT mcp_test.destructor_runs() - :before AS destructors_run_total;
-- The SqlError path of step 1 destroys its object too.
SELECT mcp_test.cpp_error('MC101');
SELECT mcp_test.destructor_runs() - :before AS destructors_after_cpp_error;

-- Repeated errors leave no dangling error state behind.
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        BEGIN
            PERFORM mcp_test.pg_error_under_cpp(0);
        EXCEPTION WHEN division_by_zero THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT mcp_test.destructor_runs() - :before AS destructors_after_loop;

-- 4. The test functions are not callable by the application roles.
SET ROLE mcp_app;
SELECT mcp_test.destructor_runs();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- 5. A C++ exception thrown inside the PgGuard lambda, while the guard's catch point and an
--    error context callback the lambda pushed are still on Postgres' error stacks: the error
--    keeps its SQLSTATE and message (and carries no CONTEXT line of the dead callback), the
--    object outside the guard is destroyed, and the backend survives.
SELECT mcp_test.destructor_runs() AS before_guard \gset
SELECT mcp_test.cpp_error_in_guard('MC103');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.destructor_runs() - :before_guard AS destructors_after_throw_in_guard;
SELECT pg_backend_pid() = :backend_pid AS same_backend;
-- The next Postgres ERROR inside the guard is reported normally (it would jump into the
-- lambda's dead frame if the guard had left PG_exception_stack pointing there).
SELECT mcp_test.pg_error_under_cpp(0);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.pg_error_under_cpp(1) AS guard_still_returns;
-- Alternating the two, caught by PL/pgSQL, many times over.
DO $$
DECLARE caught_cpp int := 0; caught_pg int := 0;
BEGIN
    FOR i IN 1..50 LOOP
        BEGIN
            PERFORM mcp_test.cpp_error_in_guard('MC202');
        EXCEPTION WHEN SQLSTATE 'MC202' THEN
            caught_cpp := caught_cpp + 1;
        END;
        BEGIN
            PERFORM mcp_test.pg_error_under_cpp(0);
        EXCEPTION WHEN division_by_zero THEN
            caught_pg := caught_pg + 1;
        END;
    END LOOP;
    RAISE NOTICE 'caught % C++ and % Postgres errors', caught_cpp, caught_pg;
END
$$;
SELECT mcp_test.destructor_runs() - :before_guard AS destructors_after_guard_loop;
SELECT pg_backend_pid() = :backend_pid AS same_backend;

-- 6. A body that returns from inside PG_TRY (leaving PG_exception_stack pointing into its
--    dead frame) is caught on the way out of the boundary: an internal error (XX000), not a
--    crash, and the next Postgres ERROR is reported normally.
SELECT mcp_test.return_inside_pg_try();
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.pg_error_under_cpp(0);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp_test.cpp_error('MC001');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_backend_pid() = :backend_pid AS same_backend;

DROP FUNCTION mcp_test.cpp_error(text), mcp_test.cpp_unknown_error(),
    mcp_test.pg_error_under_cpp(integer), mcp_test.destructor_runs(),
    mcp_test.cpp_error_in_guard(text), mcp_test.return_inside_pg_try();
REVOKE USAGE ON SCHEMA mcp_test FROM mcp_app;
DROP SCHEMA mcp_test;
