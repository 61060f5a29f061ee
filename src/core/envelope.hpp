// The ciphertext envelope: AES-256-GCM with a random 96-bit nonce and a versioned header.
//
//   offset  size  field
//   0       1     format = 0x01
//   1       4     key version, unsigned big-endian
//   5       12    nonce
//   17      n     ciphertext (same length as the plaintext)
//   17+n    16    GCM tag
//
// GCM associated data = the 17 header bytes || the caller's context bytes, so the format,
// key version and nonce are authenticated and a value only opens under the context it was
// sealed with. For credentials the context is CredentialContext(user, instance, field).
#pragma once

#include "core/no_postgres.hpp"

#include "core/keyring.hpp"
#include "core/nonce_pool.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mcp_platform {

inline constexpr uint8_t kEnvelopeFormatV1 = 0x01;
inline constexpr size_t kHeaderSize = 17;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kEnvelopeOverhead = kHeaderSize + kTagSize;
// Larger plaintexts are refused (22023); bytea/text cannot hold more than 1 GB anyway.
inline constexpr size_t kMaxPlaintext = (size_t{1} << 30) - 1024;

struct Bytes {
    const uint8_t* data;
    size_t size;
};

inline Bytes AsBytes(std::string_view s) noexcept {
    return Bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline size_t SealedSize(size_t plaintext_size) noexcept {
    return plaintext_size + kEnvelopeOverhead;
}

// Seals with an explicit nonce (known-answer tests); `out` has SealedSize(plaintext.size).
void SealWithNonce(KeyVersion& key, const uint8_t* nonce, Bytes context, Bytes plaintext,
                   uint8_t* out);

// Seals under the keyring's active key with a nonce from `pool`.
void Seal(Keyring& ring, NoncePool& pool, Bytes context, Bytes plaintext, uint8_t* out);

// Checks the length and the format byte and returns the key version (MC103 otherwise).
uint32_t EnvelopeKeyVersion(Bytes envelope);

// Plaintext size of a well-formed envelope.
inline size_t OpenedSize(size_t envelope_size) noexcept {
    return envelope_size >= kEnvelopeOverhead ? envelope_size - kEnvelopeOverhead : 0;
}

// Opens into `out` (OpenedSize bytes). MC103 malformed, MC101 unknown key version, MC102
// authentication failure; on failure `out` is wiped.
void Open(Keyring& ring, Bytes context, Bytes envelope, uint8_t* out);
void OpenWithKey(KeyVersion& key, Bytes context, Bytes envelope, uint8_t* out);

// Canonical associated data for a credential field: "mcpcred1" || user uuid (16 bytes) ||
// instance uuid (16 bytes) || field name length (1 byte) || field name.
std::string CredentialContext(const uint8_t* user_id16, const uint8_t* instance_id16,
                              std::string_view field);

}  // namespace mcp_platform
