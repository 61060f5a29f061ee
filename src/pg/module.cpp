// PG_MODULE_MAGIC and _PG_init: the one place the library is initialised.
#include "pg/boundary.hpp"
#include "pg/module.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

void _PG_init(void);
}

void _PG_init(void) {
    // Each Init* defines GUCs with Postgres calls that report errors themselves; none of
    // them holds C++ objects across those calls.
    mcp_platform::InitCredentialsModule();
    mcp_platform::InitPlanLimitsModule();
    mcp_platform::InitAuditModule();
}
