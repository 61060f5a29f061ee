// The tenant of the current transaction (the `mcp.user_id` setting), for the C code that acts
// for a tenant. Raises errors directly: call with no C++ object alive.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace mcp_platform {

// The tenant's text form, or nullptr when none is set. With mcp_platform.tenant_scope =
// 'transaction' (the default) a value counts only when it was set for the current transaction
// (set_config(..., true), SET LOCAL, mcp.set_tenant, or a function's SET clause): a value set
// at session level, or left from an earlier transaction, raises MC301, so a pooled connection
// never carries one request's tenant into the next. A database still on release 1.0 keeps
// 1.0's rule (any value counts).
const char* CurrentTenant();

// The transaction's tenant as a uuid Datum, for a function acting for it whose argument
// `argno` is its `tenant` parameter (not read when the function, as declared by an older
// release, has fewer arguments; a NULL argument means the transaction's tenant). MC301 when
// no tenant is set (42501 on a database still on release 1.0), MC302 when the argument names
// another tenant.
Datum RequireTenant(FunctionCallInfo fcinfo, int argno);

}  // namespace mcp_platform
