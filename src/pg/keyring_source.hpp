// Where the backend's keyring comes from: lazy (re)loading from mcp_platform.key_file or
// mcp_platform.key_command (defined in settings.cpp), and the key check.
#pragma once

#include "core/keyring.hpp"

namespace mcp_platform {

// The key settings were (re)applied (start-up, SIGHUP): reload the keyring on next use.
void MarkKeyringStale();

// The keyring of this backend, loaded on first use and again after the key settings were
// (re)applied (SIGHUP). Throws SqlError MC101 (no or bad key source) / MC102 (a key that does
// not match the key-check value recorded for this database), or PgError.
Keyring& CurrentKeyring();

}  // namespace mcp_platform
