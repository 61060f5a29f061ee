// libFuzzer target: the envelope decoder must reject any input with an SqlError (MC101,
// MC102 or MC103), never crash, and must round-trip what it sealed.
#include "core/envelope.hpp"
#include "core/errors.hpp"

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace mp = mcp_platform;

namespace {
mp::Keyring& Ring() {
    static mp::Keyring ring = mp::Keyring::Parse(
        "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
        "2 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n");
    return ring;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mp::Keyring& ring = Ring();
    // First byte: context length (split point); rest: context || envelope.
    size_t ctx_len = size > 0 ? data[0] % 64 : 0;
    if (size > 0) {
        ++data;
        --size;
    }
    if (ctx_len > size) ctx_len = size;
    mp::Bytes context{data, ctx_len};
    mp::Bytes envelope{data + ctx_len, size - ctx_len};
    std::vector<uint8_t> out(mp::OpenedSize(envelope.size) + 1);
    try {
        mp::Open(ring, context, envelope, out.data());
        // Opens only for genuine envelopes (the seeds); their header must then be sane.
        if (mp::EnvelopeKeyVersion(envelope) == 0) abort();
    } catch (const mp::SqlError& e) {
        const char* s = e.sqlstate();
        if (std::strcmp(s, "MC101") != 0 && std::strcmp(s, "MC102") != 0 &&
            std::strcmp(s, "MC103") != 0)
            abort();
    }
    // Round trip with the fuzz bytes as plaintext and context.
    static mp::NoncePool pool;
    std::vector<uint8_t> sealed(mp::SealedSize(envelope.size));
    if (envelope.size == 0) {  // an empty secret is refused, never sealed
        try {
            mp::Seal(ring, pool, context, envelope, sealed.data());
        } catch (const mp::SqlError& e) {
            if (std::strcmp(e.sqlstate(), "22023") != 0) abort();
            return 0;
        }
        abort();
    }
    mp::Seal(ring, pool, context, envelope, sealed.data());
    std::vector<uint8_t> opened(envelope.size + 1);
    mp::Open(ring, context, mp::Bytes{sealed.data(), sealed.size()}, opened.data());
    if (envelope.size > 0 && std::memcmp(opened.data(), envelope.data, envelope.size) != 0) abort();
    return 0;
}
