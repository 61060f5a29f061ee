-- The C++/Postgres boundary on a live server (src/pg/boundary.hpp).
-- 1. A C++ SqlError surfaces as an ERROR with its own SQLSTATE; the session keeps working.
\set VERBOSITY default
SELECT mcp._test_cpp_error('MC103');
\echo :LAST_ERROR_SQLSTATE
SELECT mcp._test_cpp_error('22023');
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS session_still_works;

-- Inside a transaction the error aborts it like any Postgres error, and ROLLBACK recovers.
BEGIN;
SELECT mcp._test_cpp_error('MC001');
\echo :LAST_ERROR_SQLSTATE
SELECT 1;
ROLLBACK;

-- Caught by PL/pgSQL like any other error, SQLSTATE intact.
DO $$
BEGIN
    PERFORM mcp._test_cpp_error('MC202');
EXCEPTION WHEN SQLSTATE 'MC202' THEN
    RAISE NOTICE 'caught MC202 in plpgsql';
END
$$;

-- 2. A non-SqlError C++ exception becomes XX000, never a crash.
SELECT mcp._test_cpp_unknown_error();
\echo :LAST_ERROR_SQLSTATE

-- 3. A Postgres ERROR raised under a live C++ object runs that object's destructor
--    (the counter counts destructor runs in this backend) and keeps its SQLSTATE (22012).
SELECT mcp._test_destructor_runs() AS before \gset
SELECT mcp._test_pg_error_under_cpp(0);
\echo :LAST_ERROR_SQLSTATE
SELECT mcp._test_destructor_runs() - :before AS destructors_run_after_pg_error;
-- The normal path also runs it exactly once.
SELECT mcp._test_pg_error_under_cpp(1) AS one_over_one;
SELECT mcp._test_destructor_runs() - :before AS destructors_run_total;
-- The SqlError path of step 1 destroys its object too.
SELECT mcp._test_cpp_error('MC101');
SELECT mcp._test_destructor_runs() - :before AS destructors_after_cpp_error;

-- Repeated errors leave no dangling error state behind.
DO $$
BEGIN
    FOR i IN 1..50 LOOP
        BEGIN
            PERFORM mcp._test_pg_error_under_cpp(0);
        EXCEPTION WHEN division_by_zero THEN
            NULL;
        END;
    END LOOP;
END
$$;
SELECT mcp._test_destructor_runs() - :before AS destructors_after_loop;

-- 4. The test functions are not callable by the application roles.
SET ROLE mcp_app;
SELECT mcp._test_destructor_runs();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
