// A fast AES-256-GCM for short values: OpenSSL's GCM mode (CRYPTO_gcm128_*, GHASH with
// PCLMULQDQ) driven by an AES-NI block cipher with the key schedule expanded once per key.
// It skips the EVP dispatch that costs several times the encryption of a 120-byte secret.
// Output is bit-identical to EVP's AES-256-GCM (unit tests cross-check both ways); callers
// fall back to EVP when the CPU lacks AES-NI or PCLMULQDQ.
#pragma once

#include "core/no_postgres.hpp"

#include "core/secure_buffer.hpp"

#include <openssl/modes.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace mcp_platform {

class FastGcm {
public:
    // True when this CPU has AES-NI and PCLMULQDQ (and the fast path is not disabled).
    static bool Available() noexcept;
    // Tests switch the fast path off to compare with EVP.
    static void SetEnabled(bool enabled) noexcept;

    explicit FastGcm(const uint8_t* key32);
    ~FastGcm();
    FastGcm(const FastGcm&) = delete;
    FastGcm& operator=(const FastGcm&) = delete;

    // One message: Start, any number of Aad calls, then Encrypt+Tag or Decrypt+Verify.
    void Start(const uint8_t* nonce12) noexcept;
    bool Aad(const uint8_t* data, size_t size) noexcept;
    bool Encrypt(const uint8_t* in, uint8_t* out, size_t size) noexcept;
    bool Decrypt(const uint8_t* in, uint8_t* out, size_t size) noexcept;
    void Tag(uint8_t* tag16) noexcept;
    bool Verify(const uint8_t* tag16) noexcept;  // constant time

private:
    SecureBuffer round_keys_;        // 15 AES-256 round keys (240 bytes)
    GCM128_CONTEXT* gcm_ = nullptr;  // holds H and its table; released with OPENSSL_clear_free
};

}  // namespace mcp_platform
