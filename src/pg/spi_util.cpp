// SPI helpers shared by the plain-C entry points (see spi_util.hpp).
#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/syscache.h"
}

namespace mcp_platform {

bool CitusLoaded() {
    const char* value = GetConfigOption("citus.propagate_set_commands", true, false);
    return value != nullptr && value[0] != '\0';
}

SPIPlanPtr PrepareOnce(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types) {
    if (*cache == nullptr) {
        SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
        if (plan == nullptr)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0) elog(ERROR, "SPI_keepplan failed");
        *cache = plan;
    }
    return *cache;
}

void ExecutePlan(SPIPlanPtr plan, Datum* values, int expected) {
    int rc = SPI_execute_plan(plan, values, nullptr, false, 0);
    if (rc != expected) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

void ExecuteStatement(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types, Datum* values,
                      const char* nulls, int expected) {
    int rc;
    if (CitusLoaded())
        rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
    else
        rc = SPI_execute_plan(PrepareOnce(cache, sql, nargs, types), values, nulls, false, 0);
    if (rc != expected) elog(ERROR, "SPI statement failed: %s", SPI_result_code_string(rc));
}

int PinSearchPath() {
    int nest_level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return nest_level;
}

void RestoreSearchPath(int nest_level) { AtEOXact_GUC(true, nest_level); }

Oid FindFunction(const char* schema, const char* name, int nargs, const Oid* argtypes) {
    Oid schema_oid = get_namespace_oid(schema, true);
    if (!OidIsValid(schema_oid)) return InvalidOid;
    oidvector* args = buildoidvector(argtypes, nargs);
    return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid, CStringGetDatum(name),
                           PointerGetDatum(args), ObjectIdGetDatum(schema_oid));
}

}  // namespace mcp_platform
