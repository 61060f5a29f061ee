// The C++/Postgres boundary. Every SQL-callable entry point runs its body through
// InvokeCpp(); every Postgres call made while C++ objects are alive goes through PgGuard().
//
//  * A C++ exception must never leave an extern "C" function (std::terminate would take the
//    whole server down): InvokeCpp catches everything, copies plain data out of the exception,
//    and raises ereport(ERROR) only after the catch block has ended and every C++ destructor
//    of the body has run.
//  * A Postgres ERROR is a longjmp: taken across a C++ frame it would skip destructors
//    (leaked OpenSSL contexts, unwiped keys). PgGuard runs the Postgres call under PG_TRY,
//    copies the error data out, and throws PgError as a C++ exception; the stack unwinds
//    normally, and InvokeCpp re-raises the original error (same SQLSTATE, message, detail).
//    Never swallow a PgError: the transaction is in an aborted state until it is re-raised.
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

// Runs f (which may call Postgres functions that ereport) and turns an ERROR into PgError.
// f itself must not hold C++ objects with destructors across the Postgres call: keep the
// lambda body to the Postgres call(s) alone.
template <typename F>
auto PgGuard(F&& f) -> decltype(f()) {
    using R = decltype(f());
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* volatile edata = nullptr;
    if constexpr (std::is_void_v<R>) {
        PG_TRY();
        {
            f();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_context);
            edata = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata != nullptr) throw PgError(edata);
    } else {
        static_assert(std::is_trivially_copyable_v<R>,
                      "PgGuard returns plain values only (Datum, pointers, scalars)");
        R volatile_result{};
        R* volatile out = &volatile_result;
        PG_TRY();
        {
            *out = f();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_context);
            edata = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (edata != nullptr) throw PgError(edata);
        return volatile_result;
    }
}

namespace boundary_detail {

// Plain data copied out of an exception before it is destroyed.
struct PendingError {
    enum Kind { kNone, kSql, kPostgres, kOutOfMemory, kUnknown } kind = kNone;
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

// Runs body() and returns its Datum. Never lets a C++ exception escape.
template <typename F>
Datum InvokeCpp(F&& body) noexcept {
    boundary_detail::PendingError pending;
    try {
        return body();
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
    boundary_detail::RaisePending(pending);
    return (Datum)0;  // not reached
}

}  // namespace mcp_platform

// Declares an SQL-callable C function whose body runs inside InvokeCpp. Usage:
//   MCP_PG_FUNCTION(mcp_encrypt) { ...; return PointerGetDatum(result); }
#define MCP_PG_FUNCTION(name)                                            \
    static Datum name##_cpp(FunctionCallInfo fcinfo);                    \
    extern "C" {                                                         \
    PG_FUNCTION_INFO_V1(name);                                           \
    Datum name(PG_FUNCTION_ARGS) {                                       \
        return mcp_platform::InvokeCpp([&]() { return name##_cpp(fcinfo); }); \
    }                                                                    \
    }                                                                    \
    static Datum name##_cpp(FunctionCallInfo fcinfo)
