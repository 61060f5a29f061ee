// PG_MODULE_MAGIC and _PG_init: the one place the library is initialised.
#include "pg/module.hpp"
#include "pg/settings.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
}
#include "pg/compat.hpp"

extern "C" {
MCP_PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void) {
    // Each step calls Postgres functions that report errors themselves; none of them holds
    // C++ objects across those calls.
    mcp_platform::DefineSettings();
    mcp_platform::InitCredentialsModule();
    mcp_platform::InstallTenantRouting();
    if (process_shared_preload_libraries_in_progress) mcp_platform::RegisterMaintenanceWorkers();
}
