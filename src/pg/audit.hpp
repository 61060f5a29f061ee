// Settings of the audit concern, defined in audit_init.cpp and read by audit_retention.cpp
// and maintenance_worker.cpp.
#pragma once

namespace mcp_platform {

// mcp_platform.audit_retention: the default retention of mcp.cleanup_old_token_audit_logs.
const char* AuditRetentionSetting();
// mcp_platform.maintenance_interval in seconds; 0 disables the background worker's runs.
int MaintenanceIntervalSeconds();

}  // namespace mcp_platform
