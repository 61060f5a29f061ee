// libFuzzer target: the keyring parser accepts or refuses (MC101) any text, never crashes,
// and never puts key material into an error message.
#include "core/errors.hpp"
#include "core/keyring.hpp"

#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace mp = mcp_platform;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        mp::Keyring ring = mp::Keyring::Parse(text);
        if (ring.empty() || ring.Find(ring.active_version()) == nullptr) abort();
        for (uint32_t v : ring.Versions())
            if (v == 0 || ring.Get(v).fingerprint().size() != 16) abort();
    } catch (const mp::SqlError& e) {
        if (std::strcmp(e.sqlstate(), "MC101") != 0) abort();
        // A message may quote the line number only: no run of 16+ hex digits from the input.
        std::string msg = std::string(e.what()) + e.detail() + e.hint();
        size_t run = 0;
        for (char c : msg) {
            bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
            run = hex ? run + 1 : 0;
            if (run >= 16) abort();
        }
    }
    return 0;
}
