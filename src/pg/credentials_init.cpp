// GUC registration for the credentials concern (called from _PG_init in module.cpp).
#include "pg/module.hpp"

namespace mcp_platform {

void InitCredentialsModule() {}

}  // namespace mcp_platform
