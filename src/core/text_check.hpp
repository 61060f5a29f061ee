// Fast check that bytes are plain ASCII text: no byte with the high bit set and no NUL.
// Every PostgreSQL server encoding is a superset of ASCII, so such bytes are valid text in any
// database; the glue layer uses this to skip the server's full encoding check for the common
// case (API keys and tokens are ASCII) and falls back to it otherwise.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mcp_platform {

inline bool IsPlainAscii(const uint8_t* data, size_t size) noexcept {
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
    for (; i < size; ++i)
        if (data[i] == 0 || data[i] >= 0x80) return false;
    return true;
}

}  // namespace mcp_platform
