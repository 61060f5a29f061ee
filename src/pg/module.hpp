// The parts of _PG_init (module.cpp) that belong to one concern each. The settings of every
// concern are defined in settings.cpp (DefineSettings, settings.hpp).
#pragma once

namespace mcp_platform {

// The nonce pool's pid source (credentials_init.cpp).
void InitCredentialsModule();

// One maintenance background worker per database of mcp_platform.maintenance_databases
// (maintenance_worker.cpp). Only while the postmaster preloads the library.
void RegisterMaintenanceWorkers();

// The planner hook that keeps a NULL tenant argument of the API functions away from Citus's
// function delegation (tenant_routing.cpp).
void InstallTenantRouting();

}  // namespace mcp_platform
