// The tenant of the current transaction: the `mcp.user_id` setting, read by every RLS policy
// as (SELECT mcp.current_user_id()) so it is evaluated once per query, and set for one
// transaction by mcp.set_tenant().
#include "core/errors.hpp"
#include "pg/boundary.hpp"
#include "pg/settings.hpp"
#include "pg/spi_util.hpp"
#include "pg/tenant.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#include "utils/uuid.h"
}
#include "pg/compat.hpp"

namespace mcp_platform {

namespace {

const char* const kTenantSetting = "mcp.user_id";

// The setting's entry in the GUC table (a placeholder: "mcp" is not a reserved prefix), found
// once it exists; entries are never freed, so the pointer stays valid.
config_generic* g_tenant_guc = nullptr;

config_generic* TenantGuc() {
    if (g_tenant_guc != nullptr) return g_tenant_guc;
    int n = 0;
    config_generic** vars = pg_compat::GucVariables(&n);
    for (int i = 0; i < n; i++)
        if (pg_strcasecmp(vars[i]->name, kTenantSetting) == 0) g_tenant_guc = vars[i];
    return g_tenant_guc;
}

// Whether the value in effect was set for the current transaction: the newest entry of the
// setting's stack is a local one (SET LOCAL, set_config(..., true)) or a function's SET
// clause. A session-level SET leaves a GUC_SET entry until commit and no entry after it.
bool SetForThisTransaction() {
    config_generic* guc = TenantGuc();
    if (guc == nullptr || guc->stack == nullptr) return false;
    switch (guc->stack->state) {
        case GUC_LOCAL:
        case GUC_SET_LOCAL:
        case GUC_SAVE:
            return true;
        default:
            return false;
    }
}

}  // namespace

const char* CurrentTenant() {
    const char* value = GetConfigOption(kTenantSetting, true, false);
    if (value == nullptr || value[0] == '\0') return nullptr;
    if (settings::tenant_scope == kTenantScopeTransaction && !SetForThisTransaction() &&
        OidIsValid(get_namespace_oid("mcp_internal", true)))
        ereport(ERROR,
                (errcode(SqlStateCode(sqlstate::kNoTenant)),
                 errmsg("no tenant set in this transaction"),
                 errdetail("mcp.user_id holds a value set at session level or in an earlier "
                           "transaction; on a pooled connection it would belong to another "
                           "request."),
                 errhint("Set the tenant in each transaction: SELECT mcp.set_tenant($1), or "
                         "set_config('mcp.user_id', $1, true).")));
    return value;
}

Datum RequireTenant(FunctionCallInfo fcinfo, int argno) {
    const char* tenant = CurrentTenant();
    if (tenant == nullptr)
        ereport(ERROR,
                (errcode(OidIsValid(get_namespace_oid("mcp_internal", true))
                             ? SqlStateCode(sqlstate::kNoTenant)
                             : ERRCODE_INSUFFICIENT_PRIVILEGE),  // release 1.0's code
                 errmsg("no tenant set in this transaction"),
                 errhint("SELECT set_config('mcp.user_id', <user id>, true) first, in the same "
                         "transaction.")));
    // uuid_in reports a malformed value as 22P02, as mcp.current_user_id() does.
    Datum user_id = DirectFunctionCall1(uuid_in, CStringGetDatum(tenant));
    if (argno < PG_NARGS() && !PG_ARGISNULL(argno) &&
        memcmp(DatumGetUUIDP(PG_GETARG_DATUM(argno))->data, DatumGetUUIDP(user_id)->data,
               UUID_LEN) != 0)
        ereport(ERROR,
                (errcode(SqlStateCode(sqlstate::kTenantMismatch)),
                 errmsg("tenant argument %s is not the tenant of this transaction",
                        DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(argno)))),
                 errhint("Pass the tenant set with mcp.set_tenant in this transaction, or leave "
                         "the argument out.")));
    return user_id;
}

}  // namespace mcp_platform

// mcp_internal.require_tenant(tenant uuid) → uuid: RequireTenant for the SQL API functions.
MCP_PG_FUNCTION_C(mcp_require_tenant) {
    return mcp_platform::RequireTenant(fcinfo, 0);
}

MCP_PG_FUNCTION_C(mcp_current_user_id) {
    const char* value = mcp_platform::CurrentTenant();
    if (value == nullptr) PG_RETURN_NULL();
    // uuid_in reports a malformed value as 22P02 (invalid_text_representation).
    return DirectFunctionCall1(uuid_in, CStringGetDatum(value));
}

// mcp.set_tenant(user_id uuid): the tenant of the current transaction (a local setting,
// gone at its end).
MCP_PG_FUNCTION_C(mcp_set_tenant) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("user_id must not be null")));
    char* text = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(0)));
    // With Citus loaded, the tenant must also reach the workers that run this transaction's
    // statements on their shards: Citus sends a SET LOCAL, run as a statement, to every node
    // the transaction uses (with citus.propagate_set_commands = 'local'), but never a
    // set_config(). Both are local to this transaction.
    if (mcp_platform::CitusLoaded()) {
        char sql[128];
        snprintf(sql, sizeof sql, "SET LOCAL mcp.user_id = '%s'", text);  // a uuid's text form
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
        if (SPI_execute("SET LOCAL citus.propagate_set_commands = 'local'", false, 0) !=
                SPI_OK_UTILITY ||
            SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
            elog(ERROR, "could not set the tenant");
        if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
        PG_RETURN_VOID();
    }
    (void)set_config_option("mcp.user_id", text,
                            superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_LOCAL, true, 0, false);
    PG_RETURN_VOID();
}
