// The C++/Postgres boundary. Every SQL-callable entry point is declared with one of the two
// macros at the end of this file: MCP_PG_FUNCTION (a C++ body, run through InvokeCpp) or
// MCP_PG_FUNCTION_C (a plain C body). Every Postgres call made while C++ objects are alive
// goes through PgGuard().
//
//  * A C++ exception must never leave an extern "C" function (std::terminate would take the
//    whole server down): InvokeCpp catches everything, copies plain data out of the exception,
//    and raises ereport(ERROR) only after the catch block has ended and every C++ destructor
//    of the body has run.
//  * A Postgres ERROR is a longjmp: taken across a C++ frame it would skip destructors
//    (leaked OpenSSL contexts, unwiped keys). PgGuard catches it the way PG_TRY does, copies
//    the error data out, and throws PgError as a C++ exception; the stack unwinds normally,
//    and InvokeCpp re-raises the original error (same SQLSTATE, message, detail).
//    Never swallow a PgError: the transaction is in an aborted state until it is re-raised.
//  * Postgres keeps the current catch point in PG_exception_stack (and the error context
//    callbacks in error_context_stack). Left pointing into a frame that is gone, the next
//    ERROR jumps into garbage. PgGuard restores both through a destructor (ErrorStackGuard),
//    so even a C++ exception thrown inside the guarded lambda leaves them intact, and
//    InvokeCpp checks on the way out that its body left them as it found them.
#pragma once

#include "core/errors.hpp"

#include <cstring>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace mcp_platform {

// A Postgres error captured by PgGuard, carried up the C++ stack.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData* edata) noexcept : edata_(edata) {}
    ErrorData* edata() const noexcept { return edata_; }
    const char* what() const noexcept override { return "postgres error"; }

private:
    ErrorData* edata_;  // palloc'd in the caller's memory context
};

// Saves PG_exception_stack and error_context_stack and puts them back when it goes out of
// scope, whichever way: normal return, a Postgres ERROR caught by PgGuard, or a C++ exception
// thrown while a guarded Postgres call is under way. PG_TRY/PG_END_TRY restore the same two
// pointers, but only when control reaches PG_END_TRY; an exception or a return skips it and
// leaves PG_exception_stack pointing into a dead frame, so the next ERROR jumps there.
class ErrorStackGuard {
public:
    ErrorStackGuard() noexcept
        : exception_stack_(PG_exception_stack), context_stack_(error_context_stack) {}
    ~ErrorStackGuard() { Restore(); }
    ErrorStackGuard(const ErrorStackGuard&) = delete;
    ErrorStackGuard& operator=(const ErrorStackGuard&) = delete;

    void Restore() const noexcept {
        PG_exception_stack = exception_stack_;
        error_context_stack = context_stack_;
    }

private:
    sigjmp_buf* const exception_stack_;
    ErrorContextCallback* const context_stack_;
};

// Runs f (which may call Postgres functions that ereport) and turns an ERROR into PgError.
// f itself must not hold C++ objects with destructors across the Postgres call: keep the
// lambda body to the Postgres call(s) alone. f may throw a C++ exception: it propagates to
// the caller with the error stacks restored.
template <typename F>
auto PgGuard(F&& f) -> decltype(f()) {
    using R = decltype(f());
    static_assert(std::is_void_v<R> || std::is_trivially_copyable_v<R>,
                  "PgGuard returns plain values only (Datum, pointers, scalars)");
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* edata = nullptr;
    {
        // Declared before the jump buffer and never modified after sigsetjmp: a longjmp back
        // here finds it intact, and its destructor restores the stacks on every way out.
        ErrorStackGuard saved;
        sigjmp_buf jump_buffer;
        if (sigsetjmp(jump_buffer, 0) == 0) {
            PG_exception_stack = &jump_buffer;
            return f();
        }
        // A Postgres ERROR longjmp'd here (what PG_CATCH does).
        saved.Restore();
        MemoryContextSwitchTo(caller_context);
        edata = CopyErrorData();
        FlushErrorState();
    }
    throw PgError(edata);
}

// The integer code of a five-character SQLSTATE (core/errors.hpp), for errcode().
inline int SqlStateCode(const char* s) { return MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]); }

namespace boundary_detail {

// Plain data copied out of an exception before it is destroyed.
struct PendingError {
    enum Kind { kNone, kSql, kPostgres, kOutOfMemory, kUnknown, kErrorStackLeft } kind = kNone;
    char sqlstate[6] = {0};
    char message[512] = {0};
    char detail[512] = {0};
    char hint[256] = {0};
    ErrorData* edata = nullptr;
};

inline void CopyText(char* dst, size_t size, const char* src) noexcept {
    if (src == nullptr) {
        dst[0] = '\0';
        return;
    }
    size_t n = std::strlen(src);
    if (n >= size) n = size - 1;
    std::memcpy(dst, src, n);
    dst[n] = '\0';
}

// Raises the pending error with ereport; does not return when there is one.
void RaisePending(const PendingError& pending);

}  // namespace boundary_detail

// Runs body() and returns its Datum. Never lets a C++ exception escape. On the way out it
// checks that the body left PG_exception_stack and error_context_stack as it found them (a
// `return` or `throw` out of a PG_TRY block does not): if not, it puts them back, so the
// error raised next cannot jump into a dead frame, and raises an internal error instead of
// the result.
template <typename F>
Datum InvokeCpp(F&& body) noexcept {
    boundary_detail::PendingError pending;
    Datum result = (Datum)0;
    // Plain pointers, not an ErrorStackGuard: RaisePending longjmps out of this frame, which
    // must hold nothing with a destructor.
    sigjmp_buf* const entry_exception_stack = PG_exception_stack;
    ErrorContextCallback* const entry_context_stack = error_context_stack;
    try {
        result = body();
    } catch (const SqlError& e) {
        pending.kind = boundary_detail::PendingError::kSql;
        boundary_detail::CopyText(pending.sqlstate, sizeof pending.sqlstate, e.sqlstate());
        boundary_detail::CopyText(pending.message, sizeof pending.message, e.what());
        boundary_detail::CopyText(pending.detail, sizeof pending.detail, e.detail().c_str());
        boundary_detail::CopyText(pending.hint, sizeof pending.hint, e.hint().c_str());
    } catch (const PgError& e) {
        pending.kind = boundary_detail::PendingError::kPostgres;
        pending.edata = e.edata();
    } catch (const std::bad_alloc&) {
        pending.kind = boundary_detail::PendingError::kOutOfMemory;
    } catch (const std::exception& e) {
        pending.kind = boundary_detail::PendingError::kUnknown;
        boundary_detail::CopyText(pending.message, sizeof pending.message, e.what());
    } catch (...) {
        pending.kind = boundary_detail::PendingError::kUnknown;
    }
    // Every C++ object of the body is destroyed here; ereport may longjmp safely.
    if (PG_exception_stack != entry_exception_stack || error_context_stack != entry_context_stack) {
        PG_exception_stack = entry_exception_stack;
        error_context_stack = entry_context_stack;
        pending.kind = boundary_detail::PendingError::kErrorStackLeft;
    }
    boundary_detail::RaisePending(pending);
    return result;
}

}  // namespace mcp_platform

// The two ways to declare an SQL-callable C function. Each keeps the exported C symbol
// `name` (SQL declarations name it: AS 'MODULE_PATHNAME', '<name>') and registers it with
// PG_FUNCTION_INFO_V1; neither lets a C++ exception out or a Postgres error skip a C++
// destructor, as long as the body keeps to its form's rule.
//
// MCP_PG_FUNCTION(name): a C++ body. It runs inside InvokeCpp, so it may create C++ objects
// and throw SqlError; every Postgres call that can raise an ERROR while one of its objects is
// alive goes through PgGuard. Usage:
//   MCP_PG_FUNCTION(mcp_encrypt) { ...; return PointerGetDatum(result); }
#define MCP_PG_FUNCTION(name)                                                 \
    static Datum name##_cpp(FunctionCallInfo fcinfo);                         \
    extern "C" {                                                              \
    PG_FUNCTION_INFO_V1(name);                                                \
    Datum name(PG_FUNCTION_ARGS) {                                            \
        return mcp_platform::InvokeCpp([&]() { return name##_cpp(fcinfo); }); \
    }                                                                         \
    }                                                                         \
    static Datum name##_cpp(FunctionCallInfo fcinfo)

// MCP_PG_FUNCTION_C(name): a plain C body that calls Postgres directly (ereport, SPI,
// PG_TRY). No object with a destructor may be alive in its frame or in any C++ function it
// calls while a Postgres ERROR can be raised, and nothing in it may throw: a Postgres ERROR
// leaves it by longjmp. Usage:
//   MCP_PG_FUNCTION_C(mcp_current_user_id) { ...; PG_RETURN_NULL(); }
#define MCP_PG_FUNCTION_C(name) \
    extern "C" {                \
    PG_FUNCTION_INFO_V1(name);  \
    }                           \
    extern "C" Datum name(PG_FUNCTION_ARGS)
