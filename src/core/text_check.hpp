// Fast check that bytes are plain ASCII text: no byte with the high bit set and no NUL.
// Every PostgreSQL server encoding is a superset of ASCII, so such bytes are valid text in any
// database; the glue layer uses this to skip the server's full encoding check for the common
// case (API keys and tokens are ASCII) and falls back to it otherwise.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mcp_platform {

inline bool IsPlainAscii(const uint8_t* data, size_t size) noexcept {
    constexpr uint64_t kLow = 0x0101010101010101ULL;
    constexpr uint64_t kHigh = 0x8080808080808080ULL;
    size_t i = 0;
#if defined(__SSE2__)
    // 64 bytes per step: the unsigned minimum of the four vectors is 0 when any byte is NUL,
    // and the sign bit of their OR is set when any byte is >= 0x80.
    for (; i + 64 <= size; i += 64) {
        const __m128i* p = reinterpret_cast<const __m128i*>(data + i);
        __m128i a = _mm_loadu_si128(p), b = _mm_loadu_si128(p + 1);
        __m128i c = _mm_loadu_si128(p + 2), d = _mm_loadu_si128(p + 3);
        __m128i any = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
        __m128i low = _mm_min_epu8(_mm_min_epu8(a, b), _mm_min_epu8(c, d));
        __m128i nul = _mm_cmpeq_epi8(low, _mm_setzero_si128());
        if (_mm_movemask_epi8(_mm_or_si128(any, nul)) != 0) return false;
    }
#endif
    // 32 bytes per step: OR of the words finds a high bit; a zero byte in any word is found
    // with the classic (w - 0x01…) & ~w & 0x80… test.
    for (; i + 32 <= size; i += 32) {
        uint64_t w[4];
        std::memcpy(w, data + i, sizeof(w));
        uint64_t high = w[0] | w[1] | w[2] | w[3];
        uint64_t zero = ((w[0] - kLow) & ~w[0]) | ((w[1] - kLow) & ~w[1]) |
                        ((w[2] - kLow) & ~w[2]) | ((w[3] - kLow) & ~w[3]);
        if ((high | zero) & kHigh) return false;
    }
    for (; i < size; ++i)
        if (data[i] == 0 || data[i] >= 0x80) return false;
    return true;
}

}  // namespace mcp_platform
