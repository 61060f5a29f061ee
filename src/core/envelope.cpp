#include "core/envelope.hpp"

#include "core/errors.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <cstring>

namespace mcp_platform {

namespace {

void WriteHeader(uint32_t version, const uint8_t* nonce, uint8_t* out) noexcept {
    out[0] = kEnvelopeFormatV1;
    out[1] = static_cast<uint8_t>(version >> 24);
    out[2] = static_cast<uint8_t>(version >> 16);
    out[3] = static_cast<uint8_t>(version >> 8);
    out[4] = static_cast<uint8_t>(version);
    std::memcpy(out + 5, nonce, kNonceSize);
}

// EVP takes int lengths; feed long inputs in chunks.
constexpr size_t kChunk = size_t{1} << 30;

bool Aad(EVP_CIPHER_CTX* ctx, Bytes bytes, bool encrypt) {
    int ignored = 0;
    for (size_t off = 0; off < bytes.size; off += kChunk) {
        size_t n = bytes.size - off < kChunk ? bytes.size - off : kChunk;
        int ok =
            encrypt
                ? EVP_EncryptUpdate(ctx, nullptr, &ignored, bytes.data + off, static_cast<int>(n))
                : EVP_DecryptUpdate(ctx, nullptr, &ignored, bytes.data + off, static_cast<int>(n));
        if (ok != 1) return false;
    }
    return true;
}

}  // namespace

// GCM associated data = header || context, fed in one call when it fits on the stack.
template <typename AadFn>
bool FeedAad(const uint8_t* header, Bytes context, AadFn&& aad) {
    uint8_t joined[kHeaderSize + 256];
    if (context.size <= sizeof(joined) - kHeaderSize) {
        std::memcpy(joined, header, kHeaderSize);
        if (context.size > 0) std::memcpy(joined + kHeaderSize, context.data, context.size);
        return aad(Bytes{joined, kHeaderSize + context.size});
    }
    return aad(Bytes{header, kHeaderSize}) && aad(context);
}

void SealWithNonce(KeyVersion& key, const uint8_t* nonce, Bytes context, Bytes plaintext,
                   uint8_t* out) {
    if (plaintext.size > kMaxPlaintext)
        throw SqlError(sqlstate::kInvalidParameter, "value too large to encrypt");
    WriteHeader(key.version(), nonce, out);
    uint8_t* body = out + kHeaderSize;
    // The key's context is keyed once (key schedule cached); only the IV is set per call.
    EVP_CIPHER_CTX* ctx = key.EncryptContext();
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
              FeedAad(out, context, [&](Bytes b) { return Aad(ctx, b, true); });
    size_t done = 0;
    while (ok && done < plaintext.size) {
        size_t n = plaintext.size - done < kChunk ? plaintext.size - done : kChunk;
        ok = EVP_EncryptUpdate(ctx, body + done, &len, plaintext.data + done,
                               static_cast<int>(n)) == 1 &&
             static_cast<size_t>(len) == n;
        done += n;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx, body + plaintext.size, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                             body + plaintext.size) == 1;
    if (!ok) {
        OPENSSL_cleanse(out, SealedSize(plaintext.size));
        throw SqlError(sqlstate::kInternal, "encryption failed");
    }
}

void Seal(Keyring& ring, NoncePool& pool, Bytes context, Bytes plaintext, uint8_t* out) {
    // One rule for every path: an empty secret is a caller's bug, never something to store.
    // (Open still opens an empty value sealed before this rule.)
    if (plaintext.size == 0)
        throw SqlError(sqlstate::kInvalidParameter, "a secret to encrypt must not be empty");
    KeyVersion& key = ring.Active();
    uint8_t nonce[kNonceSize];
    pool.Take(nonce);
    SealWithNonce(key, nonce, context, plaintext, out);
}

uint32_t EnvelopeKeyVersion(Bytes envelope) {
    if (envelope.size < kEnvelopeOverhead)
        throw SqlError(sqlstate::kMalformedCiphertext, "malformed ciphertext: too short", {},
                       "A value sealed by mcp_platform is at least 33 bytes long.");
    if (envelope.data[0] != kEnvelopeFormatV1)
        throw SqlError(sqlstate::kMalformedCiphertext,
                       "malformed ciphertext: unknown format " + std::to_string(envelope.data[0]));
    return static_cast<uint32_t>(envelope.data[1]) << 24 |
           static_cast<uint32_t>(envelope.data[2]) << 16 |
           static_cast<uint32_t>(envelope.data[3]) << 8 | static_cast<uint32_t>(envelope.data[4]);
}

void Open(Keyring& ring, Bytes context, Bytes envelope, uint8_t* out) {
    uint32_t version = EnvelopeKeyVersion(envelope);
    OpenWithKey(ring.Get(version), context, envelope, out);
}

void OpenWithKey(KeyVersion& key, Bytes context, Bytes envelope, uint8_t* out) {
    uint32_t version = EnvelopeKeyVersion(envelope);
    if (version != key.version()) throw SqlError(sqlstate::kNoKey, "key version mismatch");
    size_t body_size = OpenedSize(envelope.size);
    const uint8_t* nonce = envelope.data + 5;
    const uint8_t* body = envelope.data + kHeaderSize;
    uint8_t tag[kTagSize];
    std::memcpy(tag, body + body_size, kTagSize);
    EVP_CIPHER_CTX* ctx = key.DecryptContext();
    int len = 0;
    bool ok = EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, nonce) == 1 &&
              FeedAad(envelope.data, context, [&](Bytes b) { return Aad(ctx, b, false); });
    size_t done = 0;
    while (ok && done < body_size) {
        size_t n = body_size - done < kChunk ? body_size - done : kChunk;
        ok = EVP_DecryptUpdate(ctx, out + done, &len, body + done, static_cast<int>(n)) == 1 &&
             static_cast<size_t>(len) == n;
        done += n;
    }
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) == 1;
    uint8_t final_block[16];
    ok = ok && EVP_DecryptFinal_ex(ctx, final_block, &len) == 1;
    if (!ok) {
        if (body_size > 0) OPENSSL_cleanse(out, body_size);
        throw SqlError(
            sqlstate::kDecryptFailed, "could not decrypt value: authentication failed", {},
            "The key, the ciphertext or its context (tenant, instance, field) does not match.");
    }
}

std::string CredentialContext(const uint8_t* user_id16, const uint8_t* instance_id16,
                              std::string_view field) {
    if (field.size() > 255) throw SqlError(sqlstate::kInvalidParameter, "field name too long");
    std::string out;
    out.reserve(8 + 32 + 1 + field.size());
    out.append("mcpcred1", 8);
    out.append(reinterpret_cast<const char*>(user_id16), 16);
    out.append(reinterpret_cast<const char*>(instance_id16), 16);
    out.push_back(static_cast<char>(field.size()));
    out.append(field.data(), field.size());
    return out;
}

}  // namespace mcp_platform
