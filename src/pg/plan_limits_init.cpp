// GUC registration for the plan limits concern (called from _PG_init in module.cpp).
#include "pg/module.hpp"

namespace mcp_platform {

void InitPlanLimitsModule() {}

}  // namespace mcp_platform
