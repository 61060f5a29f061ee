// The tenant of the current transaction (the `mcp.user_id` setting), for the C code that acts
// for a tenant. Raises errors directly: call with no C++ object alive.
#pragma once

namespace mcp_platform {

// The tenant's text form, or nullptr when none is set. With mcp_platform.tenant_scope =
// 'transaction' (the default) a value counts only when it was set for the current transaction
// (set_config(..., true), SET LOCAL, mcp.set_tenant, or a function's SET clause): a value set
// at session level, or left from an earlier transaction, raises MC301, so a pooled connection
// never carries one request's tenant into the next. A database still on release 1.0 keeps
// 1.0's rule (any value counts).
const char* CurrentTenant();

}  // namespace mcp_platform
