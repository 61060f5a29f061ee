// GUC registration for the audit concern (called from _PG_init in module.cpp).
#include "pg/module.hpp"

namespace mcp_platform {

void InitAuditModule() {}

}  // namespace mcp_platform
