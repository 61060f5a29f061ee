#include "core/aes_gcm.hpp"

#include "core/errors.hpp"

#include <cpuid.h>
#include <immintrin.h>
#include <wmmintrin.h>

#include <atomic>
#include <cstring>
#include <new>

namespace mcp_platform {

namespace {

std::atomic<bool> g_enabled{true};

bool CpuHasAesAndClmul() noexcept {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
    return (ecx & bit_AES) != 0 && (ecx & bit_PCLMUL) != 0 && (ecx & bit_SSE4_1) != 0;
}

// AES-256 key expansion with AESKEYGENASSIST (FIPS-197 §5.2): even round keys mix the
// rotated/substituted word with the round constant, odd ones the substituted word only.
__attribute__((target("aes,sse4.1"))) inline __m128i ExpandEven(__m128i prev, __m128i assist) {
    assist = _mm_shuffle_epi32(assist, 0xff);
    __m128i t = _mm_slli_si128(prev, 4);
    prev = _mm_xor_si128(prev, t);
    t = _mm_slli_si128(t, 4);
    prev = _mm_xor_si128(prev, t);
    t = _mm_slli_si128(t, 4);
    prev = _mm_xor_si128(prev, t);
    return _mm_xor_si128(prev, assist);
}

__attribute__((target("aes,sse4.1"))) inline __m128i ExpandOdd(__m128i even, __m128i prev_odd) {
    __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(even, 0x00), 0xaa);
    __m128i t = _mm_slli_si128(prev_odd, 4);
    prev_odd = _mm_xor_si128(prev_odd, t);
    t = _mm_slli_si128(t, 4);
    prev_odd = _mm_xor_si128(prev_odd, t);
    t = _mm_slli_si128(t, 4);
    prev_odd = _mm_xor_si128(prev_odd, t);
    return _mm_xor_si128(prev_odd, assist);
}

#define MCP_EXPAND_STEP(i, rcon)                                               \
    a = ExpandEven(a, _mm_aeskeygenassist_si128(b, rcon));                     \
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * (i)), a);           \
    if ((i) + 1 < 15) {                                                        \
        b = ExpandOdd(a, b);                                                   \
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * ((i) + 1)), b); \
    }

__attribute__((target("aes,sse4.1"))) void ExpandKey256(const uint8_t* key, uint8_t* out) {
    __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
    __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), b);
    MCP_EXPAND_STEP(2, 0x01)
    MCP_EXPAND_STEP(4, 0x02)
    MCP_EXPAND_STEP(6, 0x04)
    MCP_EXPAND_STEP(8, 0x08)
    MCP_EXPAND_STEP(10, 0x10)
    MCP_EXPAND_STEP(12, 0x20)
    MCP_EXPAND_STEP(14, 0x40)
    a = _mm_setzero_si128();
    b = _mm_setzero_si128();
}
#undef MCP_EXPAND_STEP

__attribute__((target("aes,sse4.1"))) inline __m128i EncryptBlock(__m128i block,
                                                                  const __m128i* rk) {
    block = _mm_xor_si128(block, _mm_loadu_si128(rk));
    for (int r = 1; r < 14; ++r) block = _mm_aesenc_si128(block, _mm_loadu_si128(rk + r));
    return _mm_aesenclast_si128(block, _mm_loadu_si128(rk + 14));
}

// block128_f for CRYPTO_gcm128: one AES-256 block.
__attribute__((target("aes,sse4.1"))) void AesBlock(const unsigned char in[16],
                                                    unsigned char out[16], const void* key) {
    const __m128i* rk = static_cast<const __m128i*>(key);
    __m128i b = EncryptBlock(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in)), rk);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), b);
}

// ctr128_f for CRYPTO_gcm128_*_ctr32: out = in XOR AES(counter blocks), where block i uses
// ivec with its last 32 bits (big-endian) increased by i modulo 2^32. ivec is not updated:
// the GCM layer advances it. Four blocks at a time keep the AES units busy.
__attribute__((target("aes,sse4.1"))) void AesCtr32(const unsigned char* in, unsigned char* out,
                                                    size_t blocks, const void* key,
                                                    const unsigned char ivec[16]) {
    const __m128i* rk = static_cast<const __m128i*>(key);
    uint32_t ctr = static_cast<uint32_t>(ivec[12]) << 24 | static_cast<uint32_t>(ivec[13]) << 16 |
                   static_cast<uint32_t>(ivec[14]) << 8 | static_cast<uint32_t>(ivec[15]);
    alignas(16) unsigned char cb[4][16];
    for (int k = 0; k < 4; ++k) std::memcpy(cb[k], ivec, 12);
    auto set_counter = [&](int k, uint32_t c) {
        cb[k][12] = static_cast<unsigned char>(c >> 24);
        cb[k][13] = static_cast<unsigned char>(c >> 16);
        cb[k][14] = static_cast<unsigned char>(c >> 8);
        cb[k][15] = static_cast<unsigned char>(c);
    };
    while (blocks >= 4) {
        for (int k = 0; k < 4; ++k) set_counter(k, ctr + static_cast<uint32_t>(k));
        __m128i x0 = _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(cb[0])),
                                   _mm_loadu_si128(rk));
        __m128i x1 = _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(cb[1])),
                                   _mm_loadu_si128(rk));
        __m128i x2 = _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(cb[2])),
                                   _mm_loadu_si128(rk));
        __m128i x3 = _mm_xor_si128(_mm_load_si128(reinterpret_cast<const __m128i*>(cb[3])),
                                   _mm_loadu_si128(rk));
        for (int r = 1; r < 14; ++r) {
            __m128i k = _mm_loadu_si128(rk + r);
            x0 = _mm_aesenc_si128(x0, k);
            x1 = _mm_aesenc_si128(x1, k);
            x2 = _mm_aesenc_si128(x2, k);
            x3 = _mm_aesenc_si128(x3, k);
        }
        __m128i last = _mm_loadu_si128(rk + 14);
        x0 = _mm_aesenclast_si128(x0, last);
        x1 = _mm_aesenclast_si128(x1, last);
        x2 = _mm_aesenclast_si128(x2, last);
        x3 = _mm_aesenclast_si128(x3, last);
        const __m128i* src = reinterpret_cast<const __m128i*>(in);
        __m128i* dst = reinterpret_cast<__m128i*>(out);
        _mm_storeu_si128(dst + 0, _mm_xor_si128(x0, _mm_loadu_si128(src + 0)));
        _mm_storeu_si128(dst + 1, _mm_xor_si128(x1, _mm_loadu_si128(src + 1)));
        _mm_storeu_si128(dst + 2, _mm_xor_si128(x2, _mm_loadu_si128(src + 2)));
        _mm_storeu_si128(dst + 3, _mm_xor_si128(x3, _mm_loadu_si128(src + 3)));
        in += 64;
        out += 64;
        ctr += 4;
        blocks -= 4;
    }
    while (blocks > 0) {
        set_counter(0, ctr);
        __m128i x = EncryptBlock(_mm_load_si128(reinterpret_cast<const __m128i*>(cb[0])), rk);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                         _mm_xor_si128(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(in))));
        in += 16;
        out += 16;
        ++ctr;
        --blocks;
    }
}

}  // namespace

bool FastGcm::Available() noexcept {
    static const bool cpu = CpuHasAesAndClmul();
    return cpu && g_enabled.load(std::memory_order_relaxed);
}

void FastGcm::SetEnabled(bool enabled) noexcept {
    g_enabled.store(enabled, std::memory_order_relaxed);
}

FastGcm::FastGcm(const uint8_t* key32) : round_keys_(15 * 16) {
    ExpandKey256(key32, round_keys_.data());
    gcm_ = CRYPTO_gcm128_new(round_keys_.data(), AesBlock);
    if (gcm_ == nullptr) throw std::bad_alloc();
}

FastGcm::~FastGcm() {
    if (gcm_ != nullptr) CRYPTO_gcm128_release(gcm_);
}

void FastGcm::Start(const uint8_t* nonce12) noexcept { CRYPTO_gcm128_setiv(gcm_, nonce12, 12); }

bool FastGcm::Aad(const uint8_t* data, size_t size) noexcept {
    return size == 0 || CRYPTO_gcm128_aad(gcm_, data, size) == 0;
}

bool FastGcm::Encrypt(const uint8_t* in, uint8_t* out, size_t size) noexcept {
    return size == 0 || CRYPTO_gcm128_encrypt_ctr32(gcm_, in, out, size, AesCtr32) == 0;
}

bool FastGcm::Decrypt(const uint8_t* in, uint8_t* out, size_t size) noexcept {
    return size == 0 || CRYPTO_gcm128_decrypt_ctr32(gcm_, in, out, size, AesCtr32) == 0;
}

void FastGcm::Tag(uint8_t* tag16) noexcept { CRYPTO_gcm128_tag(gcm_, tag16, 16); }

bool FastGcm::Verify(const uint8_t* tag16) noexcept {
    return CRYPTO_gcm128_finish(gcm_, tag16, 16) == 0;
}

}  // namespace mcp_platform
