-- ===========================================================================================
-- Test-only functions proving the C++/Postgres boundary (test/sql/boundary.sql). Not granted
-- to anyone: only a superuser can call them.
-- ===========================================================================================
CREATE FUNCTION mcp._test_cpp_error(sqlstate text) RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_test_cpp_error' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_cpp_unknown_error() RETURNS void
    AS 'MODULE_PATHNAME', 'mcp_test_cpp_unknown_error' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_pg_error_under_cpp(divisor integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'mcp_test_pg_error_under_cpp' LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION mcp._test_destructor_runs() RETURNS bigint
    AS 'MODULE_PATHNAME', 'mcp_test_destructor_runs' LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION mcp._test_cpp_error(text), mcp._test_cpp_unknown_error(),
    mcp._test_pg_error_under_cpp(integer), mcp._test_destructor_runs() FROM PUBLIC;
