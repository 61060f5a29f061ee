// The hot paths of the instance API in C, each one cached SPI plan run under a pinned
// search_path: mcp.record_usage(instance_id), called on every MCP request, and
// mcp.create_instance(service_name, …). The other instance functions are SQL
// (sql/src/plan_limits.sql); enforcement itself is the trigger in plan_limits.cpp.
#include "core/errors.hpp"
#include "pg/boundary.hpp"
#include "pg/spi_util.hpp"
#include "pg/tenant.hpp"

extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "access/xact.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
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

// create_instance: the service looked up by name and the row inserted in one statement; the
// plan-limit trigger checks the activation (MC001). No row: the service is unknown or
// inactive, which kServiceSql then tells apart.
const char* const kCreateInstanceSql =
    "INSERT INTO mcp.mcp_service_table AS s"
    "       (user_id, mcp_service_id, custom_name, expires_at, status)"
    " SELECT $1, t.mcp_service_id, $3, $4, 'active' FROM mcp.mcp_table AS t"
    "  WHERE t.mcp_service_name OPERATOR(pg_catalog.=) $2 AND t.is_active"
    " RETURNING s.instance_id";
const char* const kServiceSql =
    "SELECT t.is_active, t.mcp_service_id FROM mcp.mcp_table AS t"
    " WHERE t.mcp_service_name OPERATOR(pg_catalog.=) $1";
// With Citus (which plans no INSERT … SELECT from a reference table into a distributed one
// with a parameter as the distribution column): the service looked up first (kServiceSql),
// then the row inserted with its id; the plan-limit trigger still decides (MC001).
const char* const kInsertInstanceSql =
    "INSERT INTO mcp.mcp_service_table AS s"
    "       (user_id, mcp_service_id, custom_name, expires_at, status)"
    " VALUES ($1, $2, $3, $4, 'active') RETURNING s.instance_id";

SPIPlanPtr create_instance_plan = nullptr;
SPIPlanPtr service_plan = nullptr;
SPIPlanPtr insert_instance_plan = nullptr;

// The uuid in the first column of the last statement's first row, copied out of SPI's memory.
Datum FirstColumn() {
    bool isnull = false;
    return SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
                             false, UUID_LEN);
}

// Runs kServiceSql for the service `name`: MC002 when there is none; whether it is active (its
// row stays in SPI_tuptable: is_active, mcp_service_id).
bool ServiceActive(SPIPlanPtr lookup, Datum* values, const char* nulls, const char* name) {
    int rc = SPI_execute_plan(lookup, values, nulls, false, 0);
    if (rc != SPI_OK_SELECT) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kServiceUnknown)),
                        errmsg("service \"%s\" does not exist", name)));
    bool isnull = false;
    return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

void RaiseServiceInactive(const char* name) {
    ereport(ERROR, (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kServiceInactive)),
                    errmsg("service \"%s\" is inactive", name),
                    errdetail("An inactive service accepts no new or reactivated instances.")));
}

}  // namespace

MCP_PG_FUNCTION_C(mcp_record_usage) {
    if (PG_ARGISNULL(0))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("instance_id must not be null")));
    Datum instance_id = PG_GETARG_DATUM(0);
    Datum user_id = mcp_platform::RequireTenant(fcinfo, 1);

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

// mcp.create_instance(service_name text, custom_name text, expires_at timestamptz, tenant uuid)
// → uuid: an active instance of a service for the current tenant. SECURITY DEFINER (declared
// in SQL, without a SET clause: the search_path is pinned here). MC301 no tenant, MC302
// another tenant's argument, 22023 expires_at
// not in the future, MC002 unknown service, MC003 inactive service, MC001 (the trigger)
// beyond the plan limit — as its PL/pgSQL form did.
MCP_PG_FUNCTION_C(mcp_create_instance) {
    Datum user_id = mcp_platform::RequireTenant(fcinfo, 3);
    if (!PG_ARGISNULL(2) && PG_GETARG_TIMESTAMPTZ(2) <= GetCurrentTransactionStartTimestamp())
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("expires_at must be in the future")));
    const char* name = PG_ARGISNULL(0) ? "<NULL>" : TextDatumGetCString(PG_GETARG_DATUM(0));

    int nest_level = mcp_platform::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[4] = {UUIDOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
    Datum values[4] = {user_id, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
    char nulls[4] = {' ', PG_ARGISNULL(0) ? 'n' : ' ', PG_ARGISNULL(1) ? 'n' : ' ',
                     PG_ARGISNULL(2) ? 'n' : ' '};
    SPIPlanPtr insert = mcp_platform::PrepareOnce(&create_instance_plan, kCreateInstanceSql, 4, types);
    SPIPlanPtr lookup = mcp_platform::PrepareOnce(&service_plan, kServiceSql, 1, types + 1);
    Datum instance_id = (Datum)0;
    if (!mcp_platform::CitusLoaded()) {
        // A second try only when the service was switched on between the two statements.
        for (int attempt = 0;; attempt++) {
            int rc = SPI_execute_plan(insert, values, nulls, false, 0);
            if (rc != SPI_OK_INSERT_RETURNING)
                elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
            if (SPI_processed == 1) {
                instance_id = FirstColumn();
                break;
            }
            if (!ServiceActive(lookup, values + 1, nulls + 1, name) || attempt > 0)
                RaiseServiceInactive(name);
        }
    } else {
        // With Citus: the service first, then the row with its id (kInsertInstanceSql)
        if (!ServiceActive(lookup, values + 1, nulls + 1, name)) RaiseServiceInactive(name);
        bool isnull = false;
        pg_uuid_t service_id =
            *DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
        Oid insert_types[4] = {UUIDOID, UUIDOID, TEXTOID, TIMESTAMPTZOID};
        Datum insert_values[4] = {user_id, UUIDPGetDatum(&service_id), values[2], values[3]};
        SPIPlanPtr insert_by_id =
            mcp_platform::PrepareOnce(&insert_instance_plan, kInsertInstanceSql, 4, insert_types);
        int rc = SPI_execute_plan(insert_by_id, insert_values, nulls, false, 0);
        if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
            elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
        instance_id = FirstColumn();
    }
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mcp_platform::RestoreSearchPath(nest_level);
    PG_RETURN_DATUM(instance_id);
}
