// GUC registration for the credentials concern (called from _PG_init in module.cpp).
#include "pg/keyring_source.hpp"
#include "pg/module.hpp"

namespace mcp_platform {

void InitCredentialsModule() { DefineCredentialGucs(); }

}  // namespace mcp_platform
