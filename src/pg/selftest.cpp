// Test-only C functions that prove the C++/Postgres boundary on a live server. No install or
// upgrade script declares them: test/sql/boundary.sql creates them in a schema of its own
// (CREATE FUNCTION ... AS '$libdir/mcp_platform', '<symbol>') and drops them at its end.
#include "pg/boundary.hpp"

#include <string>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/elog.h"
}
#include "pg/compat.hpp"

namespace {

// Counts destructor runs of Sentinel objects, per backend.
int64 g_destructor_runs = 0;

struct Sentinel {
    std::string payload = std::string(64, 'x');  // a real heap allocation to release
    ~Sentinel() { ++g_destructor_runs; }
};

// The five-character SQLSTATE passed as argument 0.
std::string SqlstateArg(FunctionCallInfo fcinfo) {
    text* state = PG_GETARG_TEXT_PP(0);
    std::string s(VARDATA_ANY(state), VARSIZE_ANY_EXHDR(state));
    if (s.size() != 5)
        throw mcp_platform::SqlError(mcp_platform::sqlstate::kInvalidParameter,
                                     "sqlstate must have five characters");
    return s;
}

// An error context callback as Postgres code pushes them: it adds a CONTEXT line to every
// error reported while it is on error_context_stack.
void GuardedCallContext(void*) { errcontext("guarded call of mcp_test.cpp_error_in_guard"); }

}  // namespace

// Throws SqlError with the given SQLSTATE: must surface as that SQLSTATE.
MCP_PG_FUNCTION(mcp_test_cpp_error) {
    std::string s = SqlstateArg(fcinfo);
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

// Throws SqlError with the given SQLSTATE from inside a PgGuard lambda, after the lambda set
// up what a Postgres function in progress has (PgGuard's catch point on PG_exception_stack,
// an error context callback on error_context_stack) and before it took either down. The
// error must surface with its SQLSTATE and no CONTEXT line, and the next Postgres ERROR must
// be reported normally (not jump into the lambda's dead frame).
MCP_PG_FUNCTION(mcp_test_cpp_error_in_guard) {
    std::string s = SqlstateArg(fcinfo);
    Sentinel sentinel;
    const char* state = s.c_str();
    mcp_platform::PgGuard([&]() {
        ErrorContextCallback callback;
        callback.callback = GuardedCallContext;
        callback.arg = nullptr;
        callback.previous = error_context_stack;
        error_context_stack = &callback;
        throw mcp_platform::SqlError(state, "test error thrown inside PgGuard",
                                     "The exception left the guarded call; the error stacks "
                                     "were restored.");
    });
    PG_RETURN_VOID();
}

// The bug InvokeCpp's exit check catches: a `return` out of a PG_TRY block, which leaves
// PG_exception_stack pointing into this (then dead) frame. Must surface as XX000; the next
// error must be reported normally. (g++ 12 sees the bug at compile time; this function
// commits it on purpose.)
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
MCP_PG_FUNCTION(mcp_test_return_inside_pg_try) {
    PG_TRY();
    { PG_RETURN_INT32(1); }
    PG_CATCH();
    { PG_RE_THROW(); }
    PG_END_TRY();
    PG_RETURN_INT32(0);
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
