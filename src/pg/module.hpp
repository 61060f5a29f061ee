// Module-wide hooks: each concern registers its GUCs (and, for the audit concern, the
// background worker) from _PG_init through one of these.
#pragma once

namespace mcp_platform {

void InitCredentialsModule();  // crypto / credentials GUCs
void InitPlanLimitsModule();   // plan-limit GUCs, if any
void InitAuditModule();        // audit retention GUCs and the maintenance worker

}  // namespace mcp_platform
