// The extension's settings, mcp_platform.*: all of them are defined in settings.cpp (from
// _PG_init), and the prefix is reserved, so a misspelled name is refused instead of becoming
// a placeholder nobody reads. The variables below are the ones C code reads; the others are
// read by SQL only (current_setting, or mcp_setting for the value as SHOW prints it).
#pragma once

namespace mcp_platform {

// Defines every mcp_platform.* setting and reserves the prefix (called once, from _PG_init).
void DefineSettings();

// Whether the library is preloaded (shared_preload_libraries or session_preload_libraries):
// only then are the key settings defined, superuser-only, before any role can SHOW them, and
// only then does the extension use them. Decided once, in _PG_init.
bool LibraryPreloaded();

// mcp_platform.tenant_scope
enum TenantScope { kTenantScopeTransaction = 0, kTenantScopeSession = 1 };

namespace settings {

extern char* key_file;               // mcp_platform.key_file: keyring file (superuser only)
extern char* key_command;            // mcp_platform.key_command: command printing the keyring
extern int active_key_version;       // mcp_platform.active_key_version: 0 = highest version
extern char* audit_retention;        // mcp_platform.audit_retention: an interval, as text
extern int maintenance_interval;     // mcp_platform.maintenance_interval, in seconds; 0 = off
extern char* maintenance_databases;  // mcp_platform.maintenance_databases (preload only)
extern int tenant_scope;             // mcp_platform.tenant_scope: a TenantScope
// The refresh lifecycle (src/pg/refresh.cpp); intervals in seconds.
extern int refresh_margin;            // mcp_platform.refresh_margin
extern int refresh_idle_interval;     // mcp_platform.refresh_idle_interval
extern int refresh_backoff_base;      // mcp_platform.refresh_backoff_base
extern int refresh_backoff_max;       // mcp_platform.refresh_backoff_max
extern int refresh_max_failure_days;  // mcp_platform.refresh_max_failure_days
extern int refresh_clock_offset;      // mcp_platform.refresh_clock_offset (tests only)

}  // namespace settings
}  // namespace mcp_platform
