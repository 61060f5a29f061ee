// mcp.cleanup_old_token_audit_logs(retention interval) → bigint: audit retention by dropping
// whole day partitions instead of deleting rows.
//
// Order of work, chosen so that concurrent inserts (which go to today's partition) wait for
// at most a moment:
//   1. The cleanup job's lock (mcp_internal.lock_job: a row lock no application role can
//      take; on a database still on release 1.0, its advisory lock): a second concurrent run
//      returns 0 at once (the first one removes and counts the rows; nothing is counted twice).
//   2. Trim with DELETE: the part of the boundary day older than the cutoff (unless the caller
//      passed trim_boundary = false: then that day stays whole until it has expired entirely),
//      and the expired days' rows in the DEFAULT partition. Row locks only; inserts are not
//      blocked.
//   3. Drop the expired day partitions, in a subtransaction retried on lock timeouts:
//      each one is locked SHARE (no writer can change it any more) and its rows are counted
//      (the count maintenance recorded for the day when it has not changed since, else
//      count(*); see PartitionRows), then the log
//      itself is locked ACCESS EXCLUSIVE — which DROP of a partition needs — under a short
//      lock_timeout, so inserts never queue behind a waiting cleanup for long, and the
//      partitions are dropped. The ACCESS EXCLUSIVE lock is the last thing taken and is held
//      until the caller commits: call it in its own transaction (mcp.run_maintenance does it
//      last).
//
// PG_TRY blocks only wrap the subtransaction; every other Postgres error propagates normally.
#include "pg/boundary.hpp"
#include "pg/settings.hpp"
#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
}

namespace {

// Lock timeout for the ACCESS EXCLUSIVE lock on the log, and how often to retry.
constexpr const char* kDropLockTimeout = "100ms";
constexpr int kDropAttempts = 10;
constexpr long kRetrySleepMicros = 50 * 1000L;

int64 ExecuteCount(const char* sql, int nargs, Oid* types, Datum* values) {
    int rc = SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
    return (int64)SPI_processed;
}

// The expired partitions: qualified name, UTC day, relation oid.
struct ExpiredPartitions {
    int count = 0;
    char** names = nullptr;
    Datum* days = nullptr;
    Datum* oids = nullptr;
};

// The number of rows in an expired partition, which the caller has locked SHARE (no writer of
// it is left, none can start). The count recorded when maintenance rolled the day up
// (mcp.token_audit_day_rows) is exact while the day has no dirty mark: every insert, update or
// delete of a row of a day that is over marks that day (the log's triggers), and the mark is
// cleared only after a recount.
// A TRUNCATE of the partition itself leaves no mark, but leaves it empty: an empty relation
// counts 0 (not with Citus installed: there the coordinator's relation is an empty shell and
// the rows live in the shards). Anything else is counted.
int64 PartitionRows(const ExpiredPartitions& parts, int i) {
    Oid types[2] = {DATEOID, OIDOID};
    Datum values[2] = {parts.days[i], parts.oids[i]};
    int rc = SPI_execute_with_args(
        "SELECT CASE WHEN pg_catalog.pg_relation_size($2) = 0"
        "             AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL"
        "        THEN 0 ELSE "
        "  (SELECT r.row_count FROM mcp.token_audit_day_rows r WHERE r.day = $1 "
        "      AND NOT EXISTS (SELECT 1 FROM mcp.token_audit_dirty_days x WHERE x.day = $1)) END",
        2, types, values, nullptr, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not read the row count of audit partition %s", parts.names[i]);
    bool isnull = false;
    Datum n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    SPI_freetuptable(SPI_tuptable);
    if (!isnull) return DatumGetInt64(n);

    char* count_sql = psprintf("SELECT count(*) FROM ONLY %s", parts.names[i]);
    if (SPI_execute(count_sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not count audit partition %s", parts.names[i]);
    n = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    SPI_freetuptable(SPI_tuptable);
    pfree(count_sql);
    return isnull ? 0 : DatumGetInt64(n);
}

// Locks and counts the expired partitions, then locks the log and drops them. Raises on any
// error (the caller runs it in a subtransaction). Returns the number of rows dropped.
int64 DropExpiredPartitions(const ExpiredPartitions& parts) {
    int64 rows = 0;
    for (int i = 0; i < parts.count; i++) {
        char* lock_sql = psprintf("LOCK TABLE %s IN SHARE MODE", parts.names[i]);
        if (SPI_execute(lock_sql, false, 0) != SPI_OK_UTILITY)
            elog(ERROR, "could not lock audit partition %s", parts.names[i]);
        pfree(lock_sql);
        rows += PartitionRows(parts, i);
    }
    if (SPI_execute("LOCK TABLE mcp.token_audit_log IN ACCESS EXCLUSIVE MODE", false, 0) !=
        SPI_OK_UTILITY)
        elog(ERROR, "could not lock mcp.token_audit_log");
    StringInfoData drop;
    initStringInfo(&drop);
    appendStringInfoString(&drop, "DROP TABLE ");
    for (int i = 0; i < parts.count; i++) {
        if (i > 0) appendStringInfoString(&drop, ", ");
        appendStringInfoString(&drop, parts.names[i]);
    }
    if (SPI_execute(drop.data, false, 0) != SPI_OK_UTILITY)
        elog(ERROR, "could not drop expired audit partitions");
    return rows;
}

// One attempt in a subtransaction. Returns true and sets *rows on success, false when a lock
// was not available in time (the subtransaction is rolled back, releasing every lock it
// took); re-raises any other error.
bool TryDropExpiredPartitions(const ExpiredPartitions& parts, int64* rows) {
    MemoryContext oldcontext = CurrentMemoryContext;
    ResourceOwner oldowner = CurrentResourceOwner;
    ErrorData* volatile edata = nullptr;
    volatile int64 dropped = 0;

    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(oldcontext);
    PG_TRY();
    {
        dropped = DropExpiredPartitions(parts);
        ReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(oldcontext);
        CurrentResourceOwner = oldowner;
    }
    PG_CATCH();
    {
        // Always roll the subtransaction back first; then decide (outside PG_TRY) whether
        // the error was a lock timeout to retry or something to re-raise.
        MemoryContextSwitchTo(oldcontext);
        edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        MemoryContextSwitchTo(oldcontext);
        CurrentResourceOwner = oldowner;
    }
    PG_END_TRY();
    if (edata != nullptr) {
        if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE) ReThrowError(edata);
        FreeErrorData(edata);
        return false;
    }
    *rows = dropped;
    return true;
}

Datum RetentionArgument(FunctionCallInfo fcinfo) {
    if (!PG_ARGISNULL(0)) return PG_GETARG_DATUM(0);
    const char* setting = mcp_platform::settings::audit_retention;
    if (setting == nullptr || setting[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("mcp_platform.audit_retention is empty")));
    return DirectFunctionCall3(interval_in, CStringGetDatum(setting), ObjectIdGetDatum(InvalidOid),
                               Int32GetDatum(-1));
}

}  // namespace

MCP_PG_FUNCTION_C(mcp_cleanup_old_token_audit_logs) {
    Datum retention = RetentionArgument(fcinfo);
    bool trim_boundary = PG_NARGS() < 2 || PG_ARGISNULL(1) || PG_GETARG_BOOL(1);

    // Every statement below must see what committed before it: under one snapshot for the
    // whole transaction, rows committed after it would be dropped with their partition
    // without being counted.
    if (IsolationUsesXactSnapshot())
        ereport(ERROR, (errcode(ERRCODE_INVALID_TRANSACTION_STATE),
                        errmsg("audit cleanup must run in a READ COMMITTED transaction"),
                        errdetail("Under REPEATABLE READ or SERIALIZABLE its count could miss "
                                  "rows committed after the transaction's snapshot.")));

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");

    bool isnull = false;
    bool got_lock;
    const Oid lock_args[2] = {TEXTOID, BOOLOID};
    Oid lock_job = mcp_platform::FindFunction("mcp_internal", "lock_job", 2, lock_args);
    if (OidIsValid(lock_job)) {
        got_lock = DatumGetBool(
            OidFunctionCall2(lock_job, CStringGetTextDatum("cleanup"), BoolGetDatum(false)));
    } else {
        // release 1.0's lock
        if (SPI_execute("SELECT pg_catalog.pg_try_advisory_xact_lock(1835233392, 2)", false, 1) !=
                SPI_OK_SELECT ||
            SPI_processed != 1)
            elog(ERROR, "could not take the audit cleanup lock");
        got_lock =
            DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    if (!got_lock) {
        // Another session is cleaning up right now; it removes (and counts) the rows.
        SPI_finish();
        ereport(NOTICE, (errmsg("audit cleanup already running in another session")));
        PG_RETURN_INT64(0);
    }

    // cutoff, the start of its UTC day, that day as a date, and whether the retention is > 0
    Oid interval_type[1] = {INTERVALOID};
    Datum interval_value[1] = {retention};
    int rc = SPI_execute_with_args(
        "SELECT pg_catalog.now() - $1, pg_catalog.date_trunc('day', pg_catalog.now() - $1, 'UTC'), "
        "((pg_catalog.now() - $1) AT TIME ZONE 'UTC')::date, $1 > interval '0'",
        1, interval_type, interval_value, nullptr, true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        elog(ERROR, "could not compute the audit cutoff");
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool positive = DatumGetBool(SPI_getbinval(row, desc, 4, &isnull));
    if (!positive)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("audit retention must be a positive interval")));
    Datum cutoff = SPI_getbinval(row, desc, 1, &isnull);
    Datum cutoff_day_start = SPI_getbinval(row, desc, 2, &isnull);
    Datum cutoff_date = SPI_getbinval(row, desc, 3, &isnull);

    int64 removed = 0;

    // 2. Trim: the boundary day up to the cutoff (its own partition, or the DEFAULT one), and
    //    expired rows of the DEFAULT partition.
    Oid two_ts[2] = {TIMESTAMPTZOID, TIMESTAMPTZOID};
    Datum trim_range[2] = {cutoff_day_start, cutoff};
    if (trim_boundary)
        removed += ExecuteCount(
            "DELETE FROM mcp.token_audit_log WHERE created_at >= $1 AND created_at < $2", 2, two_ts,
            trim_range);
    removed += ExecuteCount("DELETE FROM mcp.token_audit_log_default WHERE created_at < $1", 1,
                            two_ts, &cutoff_day_start);

    // 3. The expired day partitions: every day before the cutoff's day.
    Oid date_type[1] = {DATEOID};
    rc = SPI_execute_with_args(
        "SELECT pg_catalog.format('mcp.%I', c.relname), "
        "       pg_catalog.to_date(pg_catalog.substr(c.relname, 18), 'YYYYMMDD'), c.oid "
        "  FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
        " WHERE i.inhparent = 'mcp.token_audit_log'::pg_catalog.regclass "
        "   AND CASE WHEN c.relname ~ '^token_audit_log_p[0-9]{8}$' "
        "            THEN pg_catalog.to_date(pg_catalog.substr(c.relname, 18), 'YYYYMMDD') < $1 "
        "END "
        " ORDER BY c.relname",
        1, date_type, &cutoff_date, nullptr, true, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "could not list audit partitions");
    ExpiredPartitions parts;
    parts.count = (int)SPI_processed;
    int count = parts.count;
    parts.names = (char**)palloc0(sizeof(char*) * (count + 1));
    parts.days = (Datum*)palloc0(sizeof(Datum) * (count + 1));
    parts.oids = (Datum*)palloc0(sizeof(Datum) * (count + 1));
    for (int i = 0; i < count; i++) {
        HeapTuple part = SPI_tuptable->vals[i];
        parts.names[i] = SPI_getvalue(part, SPI_tuptable->tupdesc, 1);
        parts.days[i] = SPI_getbinval(part, SPI_tuptable->tupdesc, 2, &isnull);
        parts.oids[i] = SPI_getbinval(part, SPI_tuptable->tupdesc, 3, &isnull);
    }
    SPI_freetuptable(SPI_tuptable);

    bool dropped_all = true;
    if (count > 0) {
        // lock_timeout only for this step, restored when the function returns
        int nest_level = NewGUCNestLevel();
        (void)set_config_option("lock_timeout", kDropLockTimeout, PGC_USERSET, PGC_S_SESSION,
                                GUC_ACTION_SAVE, true, 0, false);
        int64 rows = 0;
        dropped_all = false;
        for (int attempt = 0; attempt < kDropAttempts; attempt++) {
            if (attempt > 0) {
                pg_usleep(kRetrySleepMicros * attempt);
                CHECK_FOR_INTERRUPTS();
            }
            if (TryDropExpiredPartitions(parts, &rows)) {
                dropped_all = true;
                break;
            }
        }
        AtEOXact_GUC(true, nest_level);
        if (dropped_all) {
            removed += rows;
        } else {
            ereport(WARNING, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                              errmsg("expired audit partitions not dropped: lock on "
                                     "mcp.token_audit_log not available"),
                              errdetail("%d partitions are left for the next run.", count)));
        }
    }

    // The rollup of the removed days goes with them (the days of partitions left behind stay).
    if (dropped_all) {
        ExecuteCount("DELETE FROM mcp.token_audit_daily WHERE day < $1", 1, date_type,
                     &cutoff_date);
        ExecuteCount("DELETE FROM mcp.token_audit_dirty_days WHERE day < $1", 1, date_type,
                     &cutoff_date);
        ExecuteCount("DELETE FROM mcp.token_audit_day_rows WHERE day < $1", 1, date_type,
                     &cutoff_date);
        // the window table no longer matches once rows of its range are gone
        ExecuteCount(
            "UPDATE mcp.token_audit_rollup_state "
            "SET window_lo = NULL, window_hi = NULL, window_marks = NULL WHERE window_lo < $1",
            1, two_ts, trim_boundary ? &cutoff : &cutoff_day_start);
    }

    SPI_finish();
    PG_RETURN_INT64(removed);
}
