// mcp.record_usage(instance_id): the hot path of the instance API, called on every MCP
// request. A C function with one cached SPI plan, run with the caller's rights: row-level
// security and the explicit tenant filter both apply, and an instance that is not the
// tenant's (or no tenant at all) is refused with 42501. The other instance functions are SQL
// (sql/install/40_plan_limits.sql); enforcement itself is the trigger in plan_limits.cpp.
#include "core/errors.hpp"
#include "pg/boundary.hpp"
#include "pg/spi_util.hpp"
#include "pg/tenant.hpp"

extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/uuid.h"
#include "fmgr.h"
}

namespace {

// The UPDATE names neither status nor expires_at, so the enforcement trigger does not fire.
const char* const kRecordUsageSql =
    "UPDATE mcp.mcp_service_table AS s"
    "   SET usage_count = s.usage_count OPERATOR(pg_catalog.+) 1, last_used_at = pg_catalog.now()"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";

SPIPlanPtr record_usage_plan = nullptr;

}  // namespace

MCP_PG_FUNCTION_C(mcp_record_usage) {
    if (PG_ARGISNULL(0))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("instance_id must not be null")));
    Datum instance_id = PG_GETARG_DATUM(0);
    const char* tenant = mcp_platform::CurrentTenant();
    if (tenant == nullptr)
        ereport(ERROR,
                (errcode(OidIsValid(get_namespace_oid("mcp_internal", true))
                             ? mcp_platform::SqlStateCode(mcp_platform::sqlstate::kNoTenant)
                             : ERRCODE_INSUFFICIENT_PRIVILEGE),  // release 1.0's code
                 errmsg("no tenant set in this transaction"),
                 errhint("SELECT set_config('mcp.user_id', <user id>, true) first, in the same "
                         "transaction.")));
    Datum user_id = DirectFunctionCall1(uuid_in, CStringGetDatum(tenant));

    // SECURITY DEFINER: the statement runs with the owner's rights, so never with the
    // caller's search_path (its names and operators are schema-qualified as well).
    int nest_level = mcp_platform::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[2] = {UUIDOID, UUIDOID};
    Datum values[2] = {user_id, instance_id};
    mcp_platform::ExecutePlan(
        mcp_platform::PrepareOnce(&record_usage_plan, kRecordUsageSql, 2, types), values,
        SPI_OK_UPDATE);
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("instance %s does not belong to the current tenant",
                               DatumGetCString(DirectFunctionCall1(uuid_out, instance_id)))));
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mcp_platform::RestoreSearchPath(nest_level);
    PG_RETURN_VOID();
}
