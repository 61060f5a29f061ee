// Test-only functions (schema mcp, names starting with _test_, EXECUTE revoked from PUBLIC)
// that prove the C++/Postgres boundary on a live server: test/sql/boundary.sql.
#include "pg/boundary.hpp"

#include <string>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
}

namespace {

// Counts destructor runs of Sentinel objects, per backend.
int64 g_destructor_runs = 0;

struct Sentinel {
    std::string payload = std::string(64, 'x');  // a real heap allocation to release
    ~Sentinel() { ++g_destructor_runs; }
};

}  // namespace

// Throws SqlError with the given SQLSTATE: must surface as that SQLSTATE.
MCP_PG_FUNCTION(mcp_test_cpp_error) {
    text* state = PG_GETARG_TEXT_PP(0);
    std::string s(VARDATA_ANY(state), VARSIZE_ANY_EXHDR(state));
    if (s.size() != 5)
        throw mcp_platform::SqlError(mcp_platform::sqlstate::kInvalidParameter,
                                     "sqlstate must have five characters");
    Sentinel sentinel;
    throw mcp_platform::SqlError(s.c_str(), "test error raised in C++",
                                 "The exception crossed the boundary as an ereport.");
}

// Raises a Postgres ERROR (division by zero, 22012) under a live C++ object: the object's
// destructor must run before the error reaches the client.
MCP_PG_FUNCTION(mcp_test_pg_error_under_cpp) {
    Sentinel sentinel;
    int32 divisor = PG_GETARG_INT32(0);
    Datum result = mcp_platform::PgGuard(
        [&]() { return DirectFunctionCall2(int4div, Int32GetDatum(1), Int32GetDatum(divisor)); });
    return result;
}

// Throws a non-SqlError C++ exception: must surface as XX000, not crash the server.
MCP_PG_FUNCTION(mcp_test_cpp_unknown_error) {
    Sentinel sentinel;
    throw std::logic_error("unexpected");
}

MCP_PG_FUNCTION(mcp_test_destructor_runs) { PG_RETURN_INT64(g_destructor_runs); }
