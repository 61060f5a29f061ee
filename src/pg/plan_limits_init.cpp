// GUC registration for the plan limits concern (called from _PG_init in module.cpp).
#include "pg/module.hpp"

namespace mcp_platform {

// Plan-limit enforcement has no settings: the limits live in mcp.user_plans, and there is
// deliberately no switch to turn enforcement off.
void InitPlanLimitsModule() {}

}  // namespace mcp_platform
