// The maintenance background worker: with mcp_platform in shared_preload_libraries, one worker
// per database of mcp_platform.maintenance_databases runs SELECT mcp.run_maintenance() every
// mcp_platform.maintenance_interval, logs one line per run, survives errors (the run's
// transaction is aborted, the error logged, and the next run happens on schedule) and stops
// promptly on SIGTERM. The workers are registered here too, from _PG_init while the
// postmaster preloads the library.
//
// Plain C style (the worker_spi pattern): no C++ object is alive anywhere in this file, so the
// PG_TRY around a run may catch an ERROR thrown from any depth.
#include "pg/module.hpp"
#include "pg/settings.hpp"

#include <csignal>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

PGDLLEXPORT void mcp_maintenance_worker_main(Datum main_arg);
}

namespace {

volatile sig_atomic_t got_sigterm = false;
volatile sig_atomic_t in_run = false;

// SIGTERM while idle: leave the loop and exit 0. During a run: behave like a backend (die):
// the running statement is cancelled at the next interrupt check and the worker exits.
void HandleSigterm(SIGNAL_ARGS) {
    int save_errno = errno;
    got_sigterm = true;
    if (in_run) die(postgres_signal_arg);
    SetLatch(MyLatch);
    errno = save_errno;
}

// One maintenance run in its own transaction. Returns normally after an ERROR, which is
// logged and its transaction aborted.
void RunOnce(const char* dbname, bool* reported_missing) {
    MemoryContext worker_context = CurrentMemoryContext;
    in_run = true;
    PG_TRY();
    {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        PushActiveSnapshot(GetTransactionSnapshot());
        pgstat_report_activity(STATE_RUNNING, "SELECT mcp.run_maintenance()");

        int rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'mcp_platform'",
                             true, 1);
        bool installed = rc == SPI_OK_SELECT && SPI_processed == 1;
        if (installed) {
            *reported_missing = false;
            rc = SPI_execute("SELECT mcp.run_maintenance()::text", false, 1);
            if (rc != SPI_OK_SELECT || SPI_processed != 1)
                elog(ERROR, "mcp.run_maintenance() returned no row");
            char* result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
            ereport(LOG, (errmsg("mcp_platform maintenance in database \"%s\": %s", dbname,
                                 result != nullptr ? result : "(null)")));
        } else if (!*reported_missing) {
            *reported_missing = true;
            ereport(LOG, (errmsg("mcp_platform maintenance: extension not installed in database "
                                 "\"%s\", skipping",
                                 dbname)));
        }

        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        // Log the error, abandon the run's transaction, and carry on (cf. autovacuum).
        HOLD_INTERRUPTS();
        EmitErrorReport();
        AbortOutOfAnyTransaction();
        FlushErrorState();
        MemoryContextSwitchTo(worker_context);
        RESUME_INTERRUPTS();
        ereport(LOG, (errmsg("mcp_platform maintenance in database \"%s\" failed; next run in %d s",
                             dbname, mcp_platform::settings::maintenance_interval)));
    }
    PG_END_TRY();
    in_run = false;
    pgstat_report_stat(true);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

namespace mcp_platform {

// One static background worker per database named in mcp_platform.maintenance_databases.
void RegisterMaintenanceWorkers() {
    const char* databases = settings::maintenance_databases;
    if (databases == nullptr || databases[0] == '\0') return;
    char* rawlist = pstrdup(databases);
    List* names = NIL;
    if (!SplitIdentifierString(rawlist, ',', &names))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("invalid list syntax in mcp_platform.maintenance_databases")));
    List* seen = NIL;
    ListCell* cell;
    foreach (cell, names) {
        const char* dbname = (const char*)lfirst(cell);
        bool duplicate = false;
        ListCell* other;
        foreach (other, seen) {
            if (strcmp((const char*)lfirst(other), dbname) == 0) duplicate = true;
        }
        if (duplicate) continue;
        seen = lappend(seen, (void*)dbname);
        if (strlen(dbname) >= BGW_EXTRALEN) continue;  // longer than any database name

        BackgroundWorker worker;
        memset(&worker, 0, sizeof worker);
        worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
        worker.bgw_restart_time = 60;
        snprintf(worker.bgw_library_name, BGW_MAXLEN, "mcp_platform");
        snprintf(worker.bgw_function_name, BGW_MAXLEN, "mcp_maintenance_worker_main");
        snprintf(worker.bgw_name, BGW_MAXLEN, "mcp_platform maintenance worker for database %s",
                 dbname);
        snprintf(worker.bgw_type, BGW_MAXLEN, "mcp_platform maintenance");
        strlcpy(worker.bgw_extra, dbname, BGW_EXTRALEN);
        worker.bgw_main_arg = (Datum)0;
        worker.bgw_notify_pid = 0;
        RegisterBackgroundWorker(&worker);
    }
}

}  // namespace mcp_platform

void mcp_maintenance_worker_main(Datum main_arg) {
    char dbname[BGW_EXTRALEN];
    strlcpy(dbname, MyBgworkerEntry->bgw_extra, sizeof dbname);

    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, HandleSigterm);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(dbname, nullptr, 0);
    pgstat_report_appname("mcp_platform maintenance");
    ereport(LOG, (errmsg("mcp_platform maintenance worker started for database \"%s\"", dbname)));

    bool reported_missing = false;
    TimestampTz last_run = 0;
    while (!got_sigterm) {
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        int interval = mcp_platform::settings::maintenance_interval;
        long wait_ms = -1;
        if (interval > 0) {
            TimestampTz now = GetCurrentTimestamp();
            TimestampTz due =
                last_run == 0 ? now : TimestampTzPlusMilliseconds(last_run, (int64)interval * 1000);
            if (now >= due) {
                last_run = now;
                RunOnce(dbname, &reported_missing);
                if (got_sigterm) break;
                due = TimestampTzPlusMilliseconds(last_run, (int64)interval * 1000);
                now = GetCurrentTimestamp();
            }
            wait_ms = due > now ? (long)((due - now + 999) / 1000) : 0;
        }
        int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH | (wait_ms >= 0 ? WL_TIMEOUT : 0);
        (void)WaitLatch(MyLatch, events, wait_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
    }
    ereport(LOG, (errmsg("mcp_platform maintenance worker for database \"%s\" stopping", dbname)));
    proc_exit(0);
}
