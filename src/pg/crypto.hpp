// Sealing and opening Postgres values (text → bytea envelope → text) with the backend's
// keyring; shared by crypto.cpp (mcp.encrypt/decrypt, rotation) and credentials.cpp.
#pragma once

#include "core/envelope.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/uuid.h"
}
#include "pg/compat.hpp"

namespace mcp_platform {

inline Bytes VarBytes(const struct varlena* v) noexcept {
    return Bytes{reinterpret_cast<const uint8_t*>(VARDATA_ANY(v)), VARSIZE_ANY_EXHDR(v)};
}

// A palloc'd bytea envelope of `plaintext` under the active key, associated data `context`.
bytea* SealToBytea(Bytes context, Bytes plaintext);

// A palloc'd text with the plaintext of `envelope` (MC101/MC102/MC103 on failure).
text* OpenToText(Bytes context, Bytes envelope);

// Re-seals `envelope` under the active key when it uses another version; returns nullptr when
// it already uses the active version. The plaintext only passes through wiped, locked memory.
bytea* ResealIfNotActive(Bytes context, Bytes envelope);

// The envelope of one credential field (user, instance, field as associated data) under the
// active key, a palloc'd bytea; its key version in *key_version unless that is null. `wipe`:
// the secret is a copy of ours, wiped here whatever happens. Call with no C++ object alive
// (it runs its C++ inside InvokeCpp; credentials.cpp).
Datum SealCredentialField(const pg_uuid_t* user, const pg_uuid_t* instance, const char* field,
                          text* secret, bool wipe, int32* key_version);

}  // namespace mcp_platform
