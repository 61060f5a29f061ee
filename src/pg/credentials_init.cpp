// Initialisation of the credentials concern (called from _PG_init in module.cpp): the nonce
// pool's pid source. (Its settings are defined in settings.cpp.)
#include "core/nonce_pool.hpp"
#include "pg/module.hpp"

extern "C" {
#include "postgres.h"
#include "miscadmin.h"
}

namespace mcp_platform {

namespace {
// MyProcPid is set in every child process right after fork, so the pool's "filled by this
// process?" check needs no getpid() system call per nonce.
pid_t PostgresProcPid() { return static_cast<pid_t>(MyProcPid); }
}  // namespace

void InitCredentialsModule() { NoncePool::SetPidFunction(PostgresProcPid); }

}  // namespace mcp_platform
