// GUCs of the audit concern and the registration of the maintenance background workers
// (called from _PG_init in module.cpp). Plain C style: the Postgres calls here report their
// own errors and no C++ object is alive across them.
#include "pg/audit.hpp"
#include "pg/module.hpp"

#include <climits>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"
}

namespace {

char* audit_retention = nullptr;
int maintenance_interval = 3600;
char* maintenance_databases = nullptr;
int audit_partitions_ahead = 7;
bool audit_retention_trim = true;

// One static background worker per database named in mcp_platform.maintenance_databases.
void RegisterMaintenanceWorkers() {
    if (maintenance_databases == nullptr || maintenance_databases[0] == '\0') return;
    char* rawlist = pstrdup(maintenance_databases);
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

}  // namespace

namespace mcp_platform {

const char* AuditRetentionSetting() { return audit_retention; }
int MaintenanceIntervalSeconds() { return maintenance_interval; }

void InitAuditModule() {
    DefineCustomStringVariable(
        "mcp_platform.audit_retention",
        "Default retention of mcp.cleanup_old_token_audit_logs() and of the maintenance runs.",
        "An interval, e.g. '90 days'. Audit rows older than this are removed.", &audit_retention,
        "90 days", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "mcp_platform.audit_retention_trim",
        "Whether the maintenance runs trim the boundary day of the audit retention row by row.",
        "on: rows are removed as soon as they are older than the retention (the boundary day is "
        "trimmed with DELETE); off: whole days only, a day's partition is dropped once all of it "
        "has expired (rows live up to a day longer, nothing is deleted row by row).",
        &audit_retention_trim, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.audit_partitions_ahead",
        "Number of future daily audit partitions mcp.run_maintenance() keeps created.", nullptr,
        &audit_partitions_ahead, 7, 1, 366, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.maintenance_interval",
        "Time between two runs of mcp.run_maintenance() by the background worker; 0 disables them.",
        "Takes effect only with mcp_platform in shared_preload_libraries.", &maintenance_interval,
        3600, 0, INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    // A postmaster-level setting can only be defined while the postmaster loads the library.
    if (!process_shared_preload_libraries_in_progress) return;
    DefineCustomStringVariable(
        "mcp_platform.maintenance_databases",
        "Databases in which the background worker runs mcp.run_maintenance().",
        "A comma-separated list; one worker per database. Takes effect only with mcp_platform in "
        "shared_preload_libraries.",
        &maintenance_databases, "postgres", PGC_POSTMASTER, GUC_LIST_INPUT, nullptr, nullptr,
        nullptr);

    RegisterMaintenanceWorkers();
}

}  // namespace mcp_platform
