// mcp.audit_summary_windowed(): the rows of mcp.token_audit_summary while the window table is
// valid (the view calls it only then). The window table holds one row per group for
// [window_lo, window_hi); the raw rows of [now() - 30 days, window_lo) and from window_hi on
// are aggregated per group by one query (its time ranges bound as constants, so only the
// partitions they touch are planned), put in a hash table, and merged into the window rows as
// they stream out: each group is looked at once, nothing is aggregated twice.
//
// SECURITY INVOKER, so the caller's row-level security applies to both queries: a tenant gets
// its own groups only. STABLE, and its queries run read-only under the calling query's
// snapshot — the snapshot under which the view found the window table valid. The hash table
// is a Postgres dynahash in the SPI memory context, freed with it on error.
#include "pg/boundary.hpp"
#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "common/hashfn.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

namespace {

// operation and method are varchar(50) in the log and the window table: at most 50
// characters of at most 4 bytes each.
constexpr int kMaxTextBytes = 50 * 4;

// The group: (instance, tenant, operation, method), method possibly NULL (a NULL method and
// an empty one differ by method_null). Hashed and compared on the bytes in use only
// (GroupHash, GroupMatch).
struct GroupKey {
    pg_uuid_t instance_id;
    pg_uuid_t user_id;
    int32 operation_len;
    int32 method_len;
    bool method_null;
    char operation[kMaxTextBytes];
    char method[kMaxTextBytes];
};

struct RawGroup {
    GroupKey key;  // first: dynahash's key
    int64 total;
    int64 success;
    int64 failure;
    TimestampTz first_at;
    TimestampTz last_at;
    bool merged;
};

// Output columns, in the view's order.
enum Column {
    kInstanceId,
    kUserId,
    kOperation,
    kMethod,
    kTotal,
    kSuccess,
    kFailure,
    kSuccessRate,
    kFirstAt,
    kLastAt,
    kColumns
};

uint32 GroupHash(const void* key, Size) {
    const GroupKey* k = (const GroupKey*)key;
    uint32 h = hash_bytes((const unsigned char*)&k->instance_id, 2 * sizeof(pg_uuid_t));
    h = hash_combine(h, hash_bytes((const unsigned char*)k->operation, k->operation_len));
    if (!k->method_null)
        h = hash_combine(h, hash_bytes((const unsigned char*)k->method, k->method_len));
    return hash_combine(h, k->method_null ? 1u : 0u);
}

int GroupMatch(const void* key1, const void* key2, Size) {
    const GroupKey* a = (const GroupKey*)key1;
    const GroupKey* b = (const GroupKey*)key2;
    if (memcmp(&a->instance_id, &b->instance_id, 2 * sizeof(pg_uuid_t)) != 0) return 1;
    if (a->operation_len != b->operation_len || a->method_null != b->method_null ||
        a->method_len != b->method_len)
        return 1;
    if (memcmp(a->operation, b->operation, a->operation_len) != 0) return 1;
    return memcmp(a->method, b->method, a->method_len) != 0 ? 1 : 0;
}

void CopyText(Datum value, char* out, int32* out_len) {
    text* t = DatumGetTextPP(value);
    int32 len = VARSIZE_ANY_EXHDR(t);
    if (len > kMaxTextBytes) elog(ERROR, "audit summary: operation or method longer than expected");
    memcpy(out, VARDATA_ANY(t), len);
    *out_len = len;
}

// The key of a deformed row whose first four columns are instance_id, user_id, operation,
// method (none NULL but the method).
void MakeKey(const Datum* row, const bool* nulls, GroupKey* key) {
    memcpy(&key->instance_id, DatumGetUUIDP(row[0]), sizeof(pg_uuid_t));
    memcpy(&key->user_id, DatumGetUUIDP(row[1]), sizeof(pg_uuid_t));
    CopyText(row[2], key->operation, &key->operation_len);
    key->method_null = nulls[3];
    key->method_len = 0;
    if (!nulls[3]) CopyText(row[3], key->method, &key->method_len);
}

// round(100.0 * success / total, 2), as the plain aggregate computes it: the integer
// round-half-up of 10000 * success / total, printed with two decimals. (The numeric division
// of the plain aggregate carries at least 16 significant digits, so the two agree exactly for
// any total below 10^11.)
Datum SuccessRate(int64 success, int64 total) {
    int64 hundredths = (20000 * success + total) / (2 * total);
    char buffer[48];
    snprintf(buffer, sizeof(buffer), INT64_FORMAT ".%02d", hundredths / 100, (int)(hundredths % 100));
    return DirectFunctionCall3(numeric_in, CStringGetDatum(buffer), ObjectIdGetDatum(InvalidOid),
                               Int32GetDatum(-1));
}

// Writes one result row: the group and counts of `row` (instance_id, user_id, operation,
// method, total, success, failure, first_at, last_at), plus those of `more` when it is not
// NULL. `rate` is the row's own success rate if it has one (a window row), used when nothing
// is added to it.
void PutGroup(ReturnSetInfo* rsinfo, const Datum* row, const bool* row_nulls,
              const RawGroup* more, const Datum* rate) {
    Datum values[kColumns];
    bool nulls[kColumns] = {};
    values[kInstanceId] = row[0];
    values[kUserId] = row[1];
    values[kOperation] = row[2];
    values[kMethod] = row[3];
    nulls[kMethod] = row_nulls[3];
    int64 total = DatumGetInt64(row[4]);
    int64 success = DatumGetInt64(row[5]);
    int64 failure = DatumGetInt64(row[6]);
    TimestampTz first_at = DatumGetTimestampTz(row[7]);
    TimestampTz last_at = DatumGetTimestampTz(row[8]);
    if (more != nullptr) {
        total += more->total;
        success += more->success;
        failure += more->failure;
        first_at = Min(first_at, more->first_at);
        last_at = Max(last_at, more->last_at);
    }
    values[kTotal] = Int64GetDatum(total);
    values[kSuccess] = Int64GetDatum(success);
    values[kFailure] = Int64GetDatum(failure);
    values[kFirstAt] = TimestampTzGetDatum(first_at);
    values[kLastAt] = TimestampTzGetDatum(last_at);
    values[kSuccessRate] =
        (rate != nullptr && more == nullptr) ? *rate : SuccessRate(success, total);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

// Receives the window table's rows straight from the executor (no SPI tuple table: each row
// is merged and written to the result as it comes).
struct WindowReceiver {
    DestReceiver pub;  // first: the executor sees a DestReceiver
    HTAB* raw;
    long raw_count;
    ReturnSetInfo* rsinfo;
};

bool ReceiveWindowRow(TupleTableSlot* slot, DestReceiver* self) {
    WindowReceiver* receiver = (WindowReceiver*)self;
    slot_getallattrs(slot);
    RawGroup* group = nullptr;
    if (receiver->raw_count > 0) {
        GroupKey key;
        MakeKey(slot->tts_values, slot->tts_isnull, &key);
        group = (RawGroup*)hash_search(receiver->raw, &key, HASH_FIND, nullptr);
        if (group != nullptr) group->merged = true;
    }
    PutGroup(receiver->rsinfo, slot->tts_values, slot->tts_isnull, group, &slot->tts_values[9]);
    return true;
}

void ReceiverStartup(DestReceiver*, int, TupleDesc) {}
void ReceiverShutdown(DestReceiver*) {}
void ReceiverDestroy(DestReceiver*) {}

}  // namespace

MCP_PG_FUNCTION_C(mcp_audit_summary_windowed) {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = (ReturnSetInfo*)fcinfo->resultinfo;

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");

    // The window table's range, as the view saw it valid.
    if (SPI_execute("SELECT s.window_lo, s.window_hi FROM mcp.token_audit_rollup_state s "
                    "WHERE s.window_lo IS NOT NULL AND s.window_hi IS NOT NULL",
                    true, 1) != SPI_OK_SELECT)
        elog(ERROR, "could not read the audit window state");
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("the audit summary's window table is not built"),
                        errhint("Query mcp.token_audit_summary instead.")));
    bool isnull = false;
    Datum window_lo = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    Datum window_hi = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    Datum start = DirectFunctionCall2(
        timestamptz_mi_interval, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
        DirectFunctionCall3(interval_in, CStringGetDatum("30 days"), ObjectIdGetDatum(InvalidOid),
                            Int32GetDatum(-1)));

    // The raw groups: [start, window_lo) and [window_hi, ∞), one query.
    Oid types[3] = {TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
    Datum bounds[3] = {start, window_lo, window_hi};
    // The aggregate is the one the rollup and the window table use (SQL text from
    // mcp_internal.audit_aggregate_sql, called through fmgr: the reader has no USAGE on
    // mcp_internal). A database still on release 1.0 has no such function: it gets the
    // query release 1.0 ran.
    const char* const condition = "(l.created_at >= $1 AND l.created_at < $2) OR l.created_at >= $3";
    const Oid text_type = TEXTOID;
    Oid aggregate_sql = mcp_platform::FindFunction("mcp_internal", "audit_aggregate_sql", 1, &text_type);
    char* raw_sql =
        OidIsValid(aggregate_sql)
            ? TextDatumGetCString(OidFunctionCall1(aggregate_sql, CStringGetTextDatum(condition)))
            : psprintf("SELECT l.instance_id, l.user_id, l.operation, l.method, count(*), "
                       "count(*) FILTER (WHERE l.status = 'success'), "
                       "count(*) FILTER (WHERE l.status = 'failure'), min(l.created_at), "
                       "max(l.created_at) FROM mcp.token_audit_log l WHERE %s GROUP BY 1, 2, 3, 4",
                       condition);
    int rc = SPI_execute_with_args(raw_sql, 3, types, bounds, nullptr, true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "could not read the raw audit rows of the summary");

    HASHCTL ctl;
    memset(&ctl, 0, sizeof(ctl));
    ctl.keysize = sizeof(GroupKey);
    ctl.entrysize = sizeof(RawGroup);
    ctl.hash = GroupHash;
    ctl.match = GroupMatch;
    ctl.hcxt = CurrentMemoryContext;  // the SPI procedure context: freed by SPI_finish
    long raw_count = (long)SPI_processed;
    HTAB* raw = hash_create("mcp audit summary raw groups", raw_count > 0 ? raw_count : 16, &ctl,
                            HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
    SPITupleTable* raw_rows = SPI_tuptable;
    Datum row[kColumns];
    bool row_nulls[kColumns];
    GroupKey key;
    for (uint64 i = 0; i < SPI_processed; i++) {
        heap_deform_tuple(raw_rows->vals[i], raw_rows->tupdesc, row, row_nulls);
        MakeKey(row, row_nulls, &key);
        bool found = false;
        RawGroup* group = (RawGroup*)hash_search(raw, &key, HASH_ENTER, &found);
        if (found) elog(ERROR, "audit summary: a raw group appeared twice");
        group->total = DatumGetInt64(row[4]);
        group->success = DatumGetInt64(row[5]);
        group->failure = DatumGetInt64(row[6]);
        group->first_at = DatumGetTimestampTz(row[7]);
        group->last_at = DatumGetTimestampTz(row[8]);
        group->merged = false;
    }

    // The window rows, each merged with its raw group if it has one, as the executor reads them.
    WindowReceiver receiver;
    memset(&receiver, 0, sizeof(receiver));
    receiver.pub.receiveSlot = ReceiveWindowRow;
    receiver.pub.rStartup = ReceiverStartup;
    receiver.pub.rShutdown = ReceiverShutdown;
    receiver.pub.rDestroy = ReceiverDestroy;
    receiver.pub.mydest = DestNone;
    receiver.raw = raw;
    receiver.raw_count = raw_count;
    receiver.rsinfo = rsinfo;
    SPIExecuteOptions options;
    memset(&options, 0, sizeof(options));
    options.read_only = true;
    options.dest = &receiver.pub;
    // (with a DestNone receiver SPI reports SPI_OK_UTILITY for a SELECT: only failures matter)
    if (SPI_execute_extended("SELECT w.instance_id, w.user_id, w.operation, w.method, w.total, "
                             "       w.success, w.failure, w.first_at, w.last_at, w.success_rate "
                             "  FROM mcp.token_audit_window w",
                             &options) < 0)
        elog(ERROR, "could not read the audit window table");

    // The raw groups that have no window row.
    for (uint64 i = 0; i < (uint64)raw_count; i++) {
        heap_deform_tuple(raw_rows->vals[i], raw_rows->tupdesc, row, row_nulls);
        MakeKey(row, row_nulls, &key);
        RawGroup* group = (RawGroup*)hash_search(raw, &key, HASH_FIND, nullptr);
        if (group == nullptr || group->merged) continue;
        PutGroup(rsinfo, row, row_nulls, nullptr, nullptr);
    }

    SPI_finish();
    return (Datum)0;
}
