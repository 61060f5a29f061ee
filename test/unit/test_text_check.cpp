#include "core/text_check.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mp = mcp_platform;

namespace {
bool Check(const std::string& s) {
    return mp::IsPlainAscii(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

TEST(TextCheck, AsciiAccepted) {
    EXPECT_TRUE(Check(""));
    EXPECT_TRUE(Check("sk-live-0123456789abcdef"));
    std::string all;
    for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
    EXPECT_TRUE(Check(all));
    EXPECT_TRUE(Check(all + all + all));
}

// A NUL or a high byte at every position of strings around the 32-byte stride is found.
TEST(TextCheck, EveryPositionOfNulAndHighByteRejected) {
    for (size_t n = 1; n <= 100; ++n) {
        for (size_t at = 0; at < n; ++at) {
            for (int bad : {0x00, 0x80, 0xC3, 0xFF}) {
                std::string s(n, 'a');
                s[at] = static_cast<char>(bad);
                EXPECT_FALSE(Check(s)) << "length " << n << " byte " << bad << " at " << at;
            }
        }
        EXPECT_TRUE(Check(std::string(n, '~')));
    }
}

// The smallest and largest accepted bytes (0x01, 0x7F) are not mistaken for a NUL or a high byte.
TEST(TextCheck, NoFalseAlarms) {
    for (size_t n = 1; n <= 70; ++n) {
        std::string s;
        for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 2 ? 0x01 : 0x7F));
        EXPECT_TRUE(Check(s)) << n;
    }
}
