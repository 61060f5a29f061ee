// The keyring: several AES-256 key versions, one active for new encryptions.
//
// Text format (file or key command output), one entry per line:
//     <version> <64 hex characters>
// version is a positive decimal integer (1 .. 2147483647); '#' starts a comment; blank lines
// are ignored; surrounding spaces/tabs and a trailing CR are ignored. Malformed lines and
// duplicate versions are refused with MC101 and a message naming the line, never its content.
#pragma once

#include "core/no_postgres.hpp"

#include "core/secure_buffer.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mcp_platform {

inline constexpr size_t kKeySize = 32;                   // AES-256
inline constexpr uint32_t kMaxKeyVersion = 2147483647u;  // fits a SQL integer

struct CipherCtxDeleter {
    void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

// One key version. Holds the key in locked memory and, created on first use, one encryption
// and one decryption context with the AES key schedule already expanded: a call only sets
// the IV. Not thread-safe (a Postgres backend is single-threaded).
class KeyVersion {
public:
    KeyVersion(uint32_t version, SecureBuffer key);
    ~KeyVersion();
    KeyVersion(const KeyVersion&) = delete;
    KeyVersion& operator=(const KeyVersion&) = delete;

    uint32_t version() const noexcept { return version_; }
    // 16 hex characters: the first 8 bytes of HMAC-SHA256(key, fixed label). Identifies a key
    // without revealing it; also the stored key-check value.
    const std::string& fingerprint() const noexcept { return fingerprint_; }
    bool locked() const noexcept { return key_.locked(); }

    EVP_CIPHER_CTX* EncryptContext();
    EVP_CIPHER_CTX* DecryptContext();

private:
    uint32_t version_;
    SecureBuffer key_;
    std::string fingerprint_;
    CipherCtxPtr encrypt_ctx_;
    CipherCtxPtr decrypt_ctx_;
};

class Keyring {
public:
    Keyring() = default;
    Keyring(const Keyring&) = delete;
    Keyring& operator=(const Keyring&) = delete;
    Keyring(Keyring&&) = default;
    Keyring& operator=(Keyring&&) = default;

    // Parses the text format above. Throws SqlError MC101 on any problem (including an empty
    // keyring). The caller wipes `text`.
    static Keyring Parse(std::string_view text);

    // Adds one key; MC101 on a duplicate or invalid version.
    void Add(uint32_t version, SecureBuffer key);

    // 0 = the highest version; otherwise that version must exist (MC101).
    void SetActive(uint32_t override_version);

    bool empty() const noexcept { return keys_.empty(); }
    size_t size() const noexcept { return keys_.size(); }
    uint32_t active_version() const noexcept { return active_; }
    KeyVersion& Active();
    // nullptr when the version is not in the keyring.
    KeyVersion* Find(uint32_t version) noexcept;
    // MC101 when the version is not in the keyring.
    KeyVersion& Get(uint32_t version);
    std::vector<uint32_t> Versions() const;

private:
    std::map<uint32_t, std::unique_ptr<KeyVersion>> keys_;
    uint32_t active_ = 0;
};

// Reads a keyring file into locked memory after checking that it is a regular file that
// neither group nor others can read or write (MC101 otherwise, with a hint).
SecureBuffer ReadKeyFile(const std::string& path);

}  // namespace mcp_platform
