// The tenant of the current transaction: the `mcp.user_id` setting, read by every RLS policy
// as (SELECT mcp.current_user_id()) so it is evaluated once per query.
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/uuid.h"
}

MCP_PG_FUNCTION_C(mcp_current_user_id) {
    const char* value = GetConfigOption("mcp.user_id", true, false);
    if (value == nullptr || value[0] == '\0') PG_RETURN_NULL();
    // uuid_in reports a malformed value as 22P02 (invalid_text_representation).
    return DirectFunctionCall1(uuid_in, CStringGetDatum(value));
}
