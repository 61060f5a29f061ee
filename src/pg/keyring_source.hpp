// Where the backend's keyring comes from: the key GUCs, lazy (re)loading, and the key check.
#pragma once

#include "core/keyring.hpp"

namespace mcp_platform {

// Defines mcp_platform.key_file, key_command, active_key_version, oauth_state_ttl and
// token_refresh_lease (called from InitCredentialsModule).
void DefineCredentialGucs();

// The keyring of this backend, loaded on first use and again after the key settings were
// (re)applied (SIGHUP). Throws SqlError MC101 (no or bad key source) / MC102 (a key that does
// not match the key-check value recorded in mcp.key_check), or PgError.
Keyring& CurrentKeyring();

}  // namespace mcp_platform
