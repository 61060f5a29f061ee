// Initialisation of the credentials concern (called from _PG_init in module.cpp): the key and
// OAuth settings, and the nonce pool's pid source.
#include "core/nonce_pool.hpp"
#include "pg/keyring_source.hpp"
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

void InitCredentialsModule() {
    DefineCredentialGucs();
    NoncePool::SetPidFunction(PostgresProcPid);
}

}  // namespace mcp_platform
