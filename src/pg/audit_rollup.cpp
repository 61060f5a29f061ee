// mcp_internal.token_audit_mark_dirty() (mcp.token_audit_mark_dirty() in release 1.0; its
// messages use the 1.1 name): AFTER ROW trigger on mcp.token_audit_log (cloned onto every
// partition). It fires only for rows of hours that are already over (the triggers' WHEN
// clauses), and records the row's UTC day in mcp.token_audit_dirty_days, so the summary reads
// that day from the raw log until maintenance recomputes its rollup.
//
// A bulk INSERT … SELECT of historical rows fires it once per row: a small per-(sub)transaction
// cache of days already marked keeps that to one SPI statement per day.
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "storage/proc.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
}
#include "pg/compat.hpp"

namespace {

constexpr int kCacheSize = 8;

// Days marked in the current subtransaction (identified by local transaction id and
// subtransaction id: a mark made in a subtransaction that rolled back is not trusted).
struct MarkedDays {
    LocalTransactionId lxid = InvalidLocalTransactionId;
    SubTransactionId subxid = InvalidSubTransactionId;
    int count = 0;
    int next = 0;
    DateADT days[kCacheSize] = {};
};
MarkedDays marked;

bool AlreadyMarked(DateADT day) {
    LocalTransactionId lxid = mcp_platform::pg_compat::ProcLocalXid(MyProc);
    if (marked.lxid != lxid || marked.subxid != GetCurrentSubTransactionId()) {
        marked.lxid = lxid;
        marked.subxid = GetCurrentSubTransactionId();
        marked.count = 0;
        marked.next = 0;
        return false;
    }
    for (int i = 0; i < marked.count; i++)
        if (marked.days[i] == day) return true;
    return false;
}

void Remember(DateADT day) {
    marked.days[marked.next] = day;
    marked.next = (marked.next + 1) % kCacheSize;
    if (marked.count < kCacheSize) marked.count++;
}

void MarkDay(DateADT day) {
    if (AlreadyMarked(day)) return;
    Oid types[1] = {DATEOID};
    Datum values[1] = {DateADTGetDatum(day)};
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    int rc = SPI_execute_with_args(
        "INSERT INTO mcp.token_audit_dirty_days AS d (day) VALUES ($1) "
        "ON CONFLICT (day) DO UPDATE SET gen = pg_catalog.nextval('mcp.token_audit_mark_gen'), "
        "marked_at = pg_catalog.now()",
        1, types, values, nullptr, false, 0);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "could not mark audit day dirty: %s", SPI_result_code_string(rc));
    SPI_finish();
    Remember(day);
}

// The UTC day of a row's created_at (NULL or infinite: none).
bool RowDay(HeapTuple tuple, TupleDesc desc, DateADT* day) {
    int attnum = SPI_fnumber(desc, "created_at");
    if (attnum <= 0)
        elog(ERROR, "mcp_internal.token_audit_mark_dirty: relation has no column created_at");
    bool isnull = false;
    Datum value = heap_getattr(tuple, attnum, desc, &isnull);
    if (isnull) return false;
    TimestampTz ts = DatumGetTimestampTz(value);
    if (TIMESTAMP_NOT_FINITE(ts)) return false;
    int64 d = ts / USECS_PER_DAY;
    if (ts < 0 && ts % USECS_PER_DAY != 0) d -= 1;  // floor for days before 2000-01-01
    *day = (DateADT)d;
    return true;
}

}  // namespace

MCP_PG_FUNCTION_C(mcp_token_audit_mark_dirty) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                 errmsg("mcp_internal.token_audit_mark_dirty() must be called as a trigger")));
    TriggerData* trigdata = (TriggerData*)fcinfo->context;
    if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                 errmsg("mcp_internal.token_audit_mark_dirty() must be an AFTER ROW trigger")));

    TupleDesc desc = RelationGetDescr(trigdata->tg_relation);
    DateADT day;
    if (RowDay(trigdata->tg_trigtuple, desc, &day)) MarkDay(day);
    if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) && RowDay(trigdata->tg_newtuple, desc, &day))
        MarkDay(day);
    return PointerGetDatum(nullptr);
}
