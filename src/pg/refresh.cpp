// The refresh lifecycle's rules, adapted to SQL (sql/src/refresh.sql calls these): the
// lifecycle clock, when stored tokens become due, and what a failure does to a credential.
// The rules themselves are src/core/refresh_policy.cpp; these are plain C bodies around them
// (the core functions are noexcept and allocate nothing).
#include "core/refresh_policy.hpp"
#include "pg/boundary.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

namespace {

using mcp_platform::Micros;
using mcp_platform::kMicrosPerSecond;
namespace settings = mcp_platform::settings;

mcp_platform::RefreshSettings CurrentSettings() {
    mcp_platform::RefreshSettings s;
    s.margin = static_cast<Micros>(settings::refresh_margin) * kMicrosPerSecond;
    s.idle_interval = static_cast<Micros>(settings::refresh_idle_interval) * kMicrosPerSecond;
    s.backoff_base = static_cast<Micros>(settings::refresh_backoff_base) * kMicrosPerSecond;
    s.backoff_max = static_cast<Micros>(settings::refresh_backoff_max) * kMicrosPerSecond;
    s.max_failure_days = settings::refresh_max_failure_days;
    return s;
}

// A timestamptz from the core's arithmetic: the core saturates, Postgres has a finite range.
TimestampTz ToTimestamp(Micros t) {
    if (t < MIN_TIMESTAMP) return MIN_TIMESTAMP;
    if (t >= END_TIMESTAMP) return END_TIMESTAMP - 1;
    return t;
}

}  // namespace

// mcp_internal.refresh_clock() → timestamptz: the lifecycle's "now": the transaction's start
// time, shifted by mcp_platform.refresh_clock_offset (0 except in tests).
MCP_PG_FUNCTION_C(mcp_refresh_clock) {
    Micros now = GetCurrentTransactionStartTimestamp();
    PG_RETURN_TIMESTAMPTZ(
        ToTimestamp(now + static_cast<Micros>(settings::refresh_clock_offset) * kMicrosPerSecond));
}

// mcp_internal.refresh_due_at(expires_at timestamptz, stored_at timestamptz) → timestamptz:
// when tokens stored at stored_at (expiring at expires_at, NULL: no expiry) become due. NULL
// when stored_at is NULL.
MCP_PG_FUNCTION_C(mcp_refresh_due_at) {
    if (PG_ARGISNULL(1)) PG_RETURN_NULL();
    bool has_expiry = !PG_ARGISNULL(0);
    Micros expires_at = has_expiry ? PG_GETARG_TIMESTAMPTZ(0) : 0;
    Micros stored_at = PG_GETARG_TIMESTAMPTZ(1);
    if (TIMESTAMP_NOT_FINITE(stored_at) || (has_expiry && TIMESTAMP_NOT_FINITE(expires_at)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("token times must be finite")));
    PG_RETURN_TIMESTAMPTZ(ToTimestamp(
        mcp_platform::RefreshDueAt(has_expiry, expires_at, stored_at, CurrentSettings())));
}

// mcp_internal.refresh_failure(failures integer, failure_days integer, last_failure_at
// timestamptz, at timestamptz, permanent boolean, OUT state text, OUT failures integer,
// OUT failure_days integer, OUT next_attempt_at timestamptz): a failed refresh at `at`.
MCP_PG_FUNCTION_C(mcp_refresh_failure) {
    if (PG_ARGISNULL(3))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("at must not be null")));
    mcp_platform::FailureState before;
    before.failures = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT32(0);
    before.failure_days = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
    if (PG_ARGISNULL(2))
        before.failure_days = 0;  // no failure recorded: nothing counted yet
    else
        before.last_counted_failure = PG_GETARG_TIMESTAMPTZ(2);
    Micros at = PG_GETARG_TIMESTAMPTZ(3);
    bool permanent = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
    mcp_platform::FailureOutcome out =
        mcp_platform::AfterFailure(before, at, permanent, CurrentSettings());

    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "mcp_refresh_failure must return a record");
    tupdesc = BlessTupleDesc(tupdesc);
    Datum values[4];
    bool nulls[4] = {false, false, false, !out.has_next_attempt};
    values[0] = CStringGetTextDatum(mcp_platform::RefreshStateName(out.state));
    values[1] = Int32GetDatum(out.failure.failures);
    values[2] = Int32GetDatum(out.failure.failure_days);
    values[3] = TimestampTzGetDatum(ToTimestamp(out.next_attempt_at));
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
