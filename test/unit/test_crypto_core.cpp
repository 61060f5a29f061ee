// Unit tests of the credential-encryption core: envelope, keyring, nonce pool, secure memory.
#include "core/envelope.hpp"
#include "core/errors.hpp"
#include "core/keyring.hpp"
#include "core/nonce_pool.hpp"
#include "core/secure_buffer.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace mp = mcp_platform;

namespace {

std::vector<uint8_t> FromHex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

std::string ToHex(const uint8_t* p, size_t n) {
    static const char d[] = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        s.push_back(d[p[i] >> 4]);
        s.push_back(d[p[i] & 15]);
    }
    return s;
}

// Key bytes 00 01 02 .. 1f.
const char kKeyHex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const char kKeyHex2[] = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

std::string Ring(std::initializer_list<std::pair<int, const char*>> keys) {
    std::string s;
    for (auto& k : keys) s += std::to_string(k.first) + " " + k.second + "\n";
    return s;
}

std::string Code(const std::function<void()>& f) {
    try {
        f();
    } catch (const mp::SqlError& e) {
        return e.sqlstate();
    }
    return "ok";
}

std::vector<uint8_t> SealStr(mp::Keyring& ring, mp::NoncePool& pool, const std::string& ctx,
                             const std::string& pt) {
    std::vector<uint8_t> out(mp::SealedSize(pt.size()));
    mp::Seal(ring, pool, mp::AsBytes(ctx), mp::AsBytes(pt), out.data());
    return out;
}

std::string OpenStr(mp::Keyring& ring, const std::string& ctx, const std::vector<uint8_t>& env) {
    std::string out(mp::OpenedSize(env.size()), '\0');
    mp::Open(ring, mp::AsBytes(ctx), mp::Bytes{env.data(), env.size()},
             reinterpret_cast<uint8_t*>(out.data()));
    return out;
}

}  // namespace

// ---------------------------------------------------------------- envelope

TEST(Envelope, KnownAnswerComputedIndependently) {
    // Expected bytes computed with Python's `cryptography` AESGCM (not OpenSSL via this code):
    //   AESGCM(key).encrypt(nonce, pt, header + ctx), header = 01 00000007 nonce.
    auto ring = mp::Keyring::Parse(Ring({{7, kKeyHex}}));
    auto nonce = FromHex("cafebabefacedbaddecaf888");
    std::string ctx = "tenant-a/instance-1/api_key";
    std::string pt = "sk-live-0123456789abcdefghijklmnopqrstuvwxyz";
    std::vector<uint8_t> out(mp::SealedSize(pt.size()));
    mp::SealWithNonce(ring.Get(7), nonce.data(), mp::AsBytes(ctx), mp::AsBytes(pt), out.data());
    EXPECT_EQ(ToHex(out.data(), out.size()),
              "0100000007cafebabefacedbaddecaf888f9c88d4ac30c2a36763a6fee4f28bf083519a133bc7d0f1229"
              "b76d1bd5e50891c220b"
              "034b2a03c145123511203f2fcc6ec9b7e7c85c427461231cd86");
    EXPECT_EQ(OpenStr(ring, ctx, out), pt);

    std::vector<uint8_t> empty(mp::SealedSize(0));
    mp::SealWithNonce(ring.Get(7), nonce.data(), mp::Bytes{nullptr, 0}, mp::Bytes{nullptr, 0},
                      empty.data());
    EXPECT_EQ(ToHex(empty.data(), empty.size()),
              "0100000007cafebabefacedbaddecaf88819c651b6eecaac458a552fe2faa98ce3");
    EXPECT_EQ(OpenStr(ring, "", empty), "");
}

TEST(Envelope, FingerprintKnownAnswer) {
    // HMAC-SHA256(key, "mcp_platform key fingerprint v1")[0..8], computed with Python hmac.
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    EXPECT_EQ(ring.Get(1).fingerprint(), "f85877d9d0c378a5");
    EXPECT_EQ(ring.Get(1).fingerprint().find("0001020304"), std::string::npos);
}

TEST(Envelope, RoundTripsManySizes) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}, {2, kKeyHex2}}));
    mp::NoncePool pool(4);
    for (size_t n : {1, 15, 16, 17, 120, 1000, 4096, 100000}) {
        std::string pt(n, '\0');
        for (size_t i = 0; i < n; ++i) pt[i] = static_cast<char>(i * 31 + 7);
        auto env = SealStr(ring, pool, "ctx", pt);
        ASSERT_EQ(env.size(), n + 33);
        EXPECT_EQ(env[0], 0x01);
        EXPECT_EQ(mp::EnvelopeKeyVersion(mp::Bytes{env.data(), env.size()}), 2u);
        EXPECT_EQ(OpenStr(ring, "ctx", env), pt);
    }
}

TEST(Envelope, EmptySecretIsRefusedButAnOldEmptyValueOpens) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool(4);
    try {
        SealStr(ring, pool, "ctx", "");
        FAIL() << "an empty secret was sealed";
    } catch (const mp::SqlError& e) {
        EXPECT_STREQ(e.sqlstate(), "22023");
    }
    // a value sealed empty before the rule (the known-answer envelope) still opens
    uint8_t nonce[12] = {0};
    std::vector<uint8_t> empty(mp::SealedSize(0));
    mp::SealWithNonce(ring.Get(1), nonce, mp::AsBytes(std::string("ctx")), mp::Bytes{nullptr, 0},
                      empty.data());
    EXPECT_EQ(OpenStr(ring, "ctx", empty), "");
}

TEST(Envelope, SameInputTwiceGivesDifferentCiphertexts) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    auto a = SealStr(ring, pool, "c", "secret");
    auto b = SealStr(ring, pool, "c", "secret");
    EXPECT_NE(a, b);
}

TEST(Envelope, EverySingleByteFlipIsRejected) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    std::string pt(120, 'x');
    auto env = SealStr(ring, pool, "user/instance/field", pt);
    for (size_t i = 0; i < env.size(); ++i) {
        for (uint8_t mask : {0x01, 0x80, 0xff}) {
            auto bad = env;
            bad[i] ^= mask;
            std::string code = Code([&] { OpenStr(ring, "user/instance/field", bad); });
            // Byte 0 is the format (MC103), bytes 1..4 the key version (MC101: not in the
            // keyring), everything else fails authentication (MC102).
            const char* want = i == 0 ? "MC103" : (i <= 4 ? "MC101" : "MC102");
            EXPECT_EQ(code, want) << "byte " << i << " mask " << int(mask);
        }
    }
}

TEST(Envelope, FlippedVersionThatExistsStillFailsAuthentication) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}, {3, kKeyHex}}));  // same key bytes twice
    ring.SetActive(1);
    mp::NoncePool pool;
    auto env = SealStr(ring, pool, "c", "secret");
    env[4] = 3;  // header is authenticated: a relabelled version fails even with the same key
    EXPECT_EQ(Code([&] { OpenStr(ring, "c", env); }), "MC102");
}

TEST(Envelope, EveryTruncationIsRejected) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    auto env = SealStr(ring, pool, "c", std::string(64, 's'));
    for (size_t n = 0; n < env.size(); ++n) {
        std::vector<uint8_t> cut(env.begin(), env.begin() + n);
        std::string code = Code([&] { OpenStr(ring, "c", cut); });
        EXPECT_EQ(code, n < 33 ? "MC103" : "MC102") << "length " << n;
    }
    auto longer = env;
    longer.push_back(0);
    EXPECT_EQ(Code([&] { OpenStr(ring, "c", longer); }), "MC102");
}

TEST(Envelope, WrongAssociatedDataIsRejected) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    auto env = SealStr(ring, pool, "user-a/inst-1/api_key", "secret");
    EXPECT_EQ(OpenStr(ring, "user-a/inst-1/api_key", env), "secret");
    for (const char* other : {"", "user-b/inst-1/api_key", "user-a/inst-2/api_key",
                              "user-a/inst-1/client_secret", "user-a/inst-1/api_ke"}) {
        EXPECT_EQ(Code([&] { OpenStr(ring, other, env); }), "MC102") << other;
    }
    EXPECT_EQ(Code([&] { OpenStr(ring, std::string("user-a/inst-1/api_key\0", 22), env); }),
              "MC102");
}

TEST(Envelope, WrongKeyIsRejected) {
    auto ring1 = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    auto ring2 = mp::Keyring::Parse(Ring({{1, kKeyHex2}}));
    mp::NoncePool pool;
    auto env = SealStr(ring1, pool, "c", "secret");
    EXPECT_EQ(Code([&] { OpenStr(ring2, "c", env); }), "MC102");
}

TEST(Envelope, UnknownVersionIsMC101) {
    auto ring1 = mp::Keyring::Parse(Ring({{5, kKeyHex}}));
    auto ring2 = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    auto env = SealStr(ring1, pool, "c", "secret");
    EXPECT_EQ(Code([&] { OpenStr(ring2, "c", env); }), "MC101");
}

TEST(Envelope, FailedOpenWipesOutput) {
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}}));
    mp::NoncePool pool;
    auto env = SealStr(ring, pool, "c", std::string(100, 'P'));
    env.back() ^= 1;  // tag
    std::string out(100, '\0');
    EXPECT_THROW(mp::Open(ring, mp::AsBytes("c"), mp::Bytes{env.data(), env.size()},
                          reinterpret_cast<uint8_t*>(out.data())),
                 mp::SqlError);
    EXPECT_EQ(out, std::string(100, '\0'));
}

TEST(Envelope, ContextsAreReusedAcrossCallsAndKeys) {
    // Interleave versions and directions: a cached context must be fully re-initialised by
    // the IV alone.
    auto ring = mp::Keyring::Parse(Ring({{1, kKeyHex}, {2, kKeyHex2}}));
    mp::NoncePool pool;
    std::vector<std::vector<uint8_t>> envs;
    for (int i = 0; i < 50; ++i) {
        ring.SetActive(1 + i % 2);
        envs.push_back(SealStr(ring, pool, "c" + std::to_string(i), "value " + std::to_string(i)));
        if (i % 3 == 0) {
            EXPECT_EQ(Code([&] { OpenStr(ring, "wrong", envs.back()); }), "MC102");
        }
    }
    for (int i = 0; i < 50; ++i)
        EXPECT_EQ(OpenStr(ring, "c" + std::to_string(i), envs[i]), "value " + std::to_string(i));
}

TEST(Envelope, CredentialContextIsCanonical) {
    uint8_t u[16], i1[16], i2[16];
    for (int k = 0; k < 16; ++k) {
        u[k] = static_cast<uint8_t>(k);
        i1[k] = static_cast<uint8_t>(100 + k);
        i2[k] = static_cast<uint8_t>(100 + k);
    }
    i2[15] ^= 1;
    std::string a = mp::CredentialContext(u, i1, "api_key");
    EXPECT_EQ(a.size(), 8u + 32 + 1 + 7);
    EXPECT_EQ(a.substr(0, 8), "mcpcred1");
    EXPECT_NE(a, mp::CredentialContext(u, i2, "api_key"));
    EXPECT_NE(a, mp::CredentialContext(i1, u, "api_key"));
    EXPECT_NE(mp::CredentialContext(u, i1, "access_token"),
              mp::CredentialContext(u, i1, "refresh_token"));
    EXPECT_EQ(Code([&] { mp::CredentialContext(u, i1, std::string(256, 'f')); }), "22023");
}

// ---------------------------------------------------------------- keyring

TEST(Keyring, ParsesCommentsBlanksAndPicksHighest) {
    std::string text = "# production keys\n\n  1 " + std::string(kKeyHex) + "  # old\r\n\t3\t" +
                       kKeyHex2 + "\n2 " + std::string(kKeyHex).substr(0, 62) + "AB\n";
    auto ring = mp::Keyring::Parse(text);
    EXPECT_EQ(ring.size(), 3u);
    EXPECT_EQ(ring.active_version(), 3u);
    EXPECT_EQ((ring.Versions()), (std::vector<uint32_t>{1, 2, 3}));
    ring.SetActive(1);
    EXPECT_EQ(ring.active_version(), 1u);
    ring.SetActive(0);
    EXPECT_EQ(ring.active_version(), 3u);
    EXPECT_EQ(Code([&] { ring.SetActive(9); }), "MC101");
    EXPECT_NE(ring.Get(1).fingerprint(), ring.Get(3).fingerprint());
    EXPECT_EQ(ring.Get(1).fingerprint().size(), 16u);
    EXPECT_EQ(ring.Find(4), nullptr);
    EXPECT_EQ(Code([&] { ring.Get(4); }), "MC101");
}

TEST(Keyring, RefusesMalformedInputNamingTheLineButNotTheKey) {
    std::string good = std::string("1 ") + kKeyHex + "\n";
    struct Case {
        std::string text;
        std::string line;
    } cases[] = {
        {"", ""},
        {"# only a comment\n\n", ""},
        {good + "0 " + kKeyHex2 + "\n", "line 2"},
        {good + "-2 " + kKeyHex2 + "\n", "line 2"},
        {good + "+2 " + kKeyHex2 + "\n", "line 2"},
        {good + "2.0 " + kKeyHex2 + "\n", "line 2"},
        {good + "2147483648 " + kKeyHex2 + "\n", "line 2"},
        {good + "99999999999999999999 " + kKeyHex2 + "\n", "line 2"},
        {good + "2\n", "line 2"},
        {good + "2 " + std::string(kKeyHex2).substr(0, 63) + "\n", "line 2"},
        {good + "2 " + kKeyHex2 + "00\n", "line 2"},
        {good + "2 " + std::string(kKeyHex2).substr(0, 63) + "g\n", "line 2"},
        {good + "2 " + kKeyHex2 + " extra\n", "line 2"},
        {good + "2" + kKeyHex2 + "\n", "line 2"},
        {good + "x\n", "line 2"},
        {good + "\n\n# c\n" + good, "line 5"},
        {good + "01 " + kKeyHex2 + "\n", "line 2"},
    };
    for (const auto& c : cases) {
        try {
            mp::Keyring::Parse(c.text);
            ADD_FAILURE() << "accepted: " << c.text;
        } catch (const mp::SqlError& e) {
            EXPECT_STREQ(e.sqlstate(), "MC101");
            std::string msg = std::string(e.what()) + e.detail() + e.hint();
            if (!c.line.empty()) {
                EXPECT_NE(msg.find(c.line), std::string::npos) << msg;
            }
            EXPECT_EQ(msg.find("0001020304"), std::string::npos) << msg;
            EXPECT_EQ(msg.find("ffeeddcc"), std::string::npos) << msg;
        }
    }
}

TEST(Keyring, KeyFileMustNotBeGroupOrWorldAccessible) {
    char path[] = "/tmp/mcp_keyring_test_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    std::string text = std::string("4 ") + kKeyHex + "\n";
    ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    chmod(path, 0600);
    auto buf = mp::ReadKeyFile(path);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), buf.size()), text);
    auto ring =
        mp::Keyring::Parse(std::string_view(reinterpret_cast<char*>(buf.data()), buf.size()));
    EXPECT_EQ(ring.active_version(), 4u);
    for (mode_t bad : {0640, 0604, 0660, 0620, 0602}) {
        chmod(path, bad);
        EXPECT_EQ(Code([&] { mp::ReadKeyFile(path); }), "MC101") << std::oct << bad;
    }
    unlink(path);
    EXPECT_EQ(Code([&] { mp::ReadKeyFile(path); }), "MC101");
    EXPECT_EQ(Code([&] { mp::ReadKeyFile("/tmp"); }), "MC101");
}

// ---------------------------------------------------------------- nonce pool

TEST(NoncePool, NoncesAreDistinctAndPoolRefills) {
    mp::NoncePool pool(8);
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        uint8_t n[12];
        pool.Take(n);
        EXPECT_TRUE(seen.insert(ToHex(n, 12)).second);
    }
}

TEST(NoncePool, ChildAfterForkDiscardsInheritedNonces) {
    mp::NoncePool pool(64);
    uint8_t first[12];
    pool.Take(first);
    ASSERT_EQ(pool.Available(), 63u);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(fds[0]);
        // In the child: the inherited buffer is not ours; take 63 nonces and report them.
        uint8_t out[63 * 12 + 1];
        out[0] = static_cast<uint8_t>(pool.Available());
        for (int i = 0; i < 63; ++i) pool.Take(out + 1 + 12 * i);
        ssize_t w = write(fds[1], out, sizeof(out));
        _exit(w == static_cast<ssize_t>(sizeof(out)) ? 0 : 1);
    }
    close(fds[1]);
    uint8_t child_out[63 * 12 + 1];
    size_t got = 0;
    while (got < sizeof(child_out)) {
        ssize_t r = read(fds[0], child_out + got, sizeof(child_out) - got);
        if (r <= 0) break;
        got += static_cast<size_t>(r);
    }
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ASSERT_EQ(got, sizeof(child_out));
    EXPECT_EQ(child_out[0], 0) << "child saw the parent's buffered nonces";
    std::set<std::string> parent;
    for (int i = 0; i < 63; ++i) {
        uint8_t n[12];
        pool.Take(n);
        parent.insert(ToHex(n, 12));
    }
    EXPECT_EQ(pool.filled_by(), getpid());
    for (int i = 0; i < 63; ++i)
        EXPECT_EQ(parent.count(ToHex(child_out + 1 + 12 * i, 12)), 0u)
            << "nonce repeated across fork";
}

// ---------------------------------------------------------------- secure memory

TEST(SecureBuffer, AllocatesZeroedLockedAndMoves) {
    mp::SecureBuffer a(32);
    ASSERT_EQ(a.size(), 32u);
    for (size_t i = 0; i < 32; ++i) EXPECT_EQ(a.data()[i], 0);
    EXPECT_TRUE(a.locked());  // RLIMIT_MEMLOCK allows a page in the test environment
    a.data()[0] = 42;
    mp::SecureBuffer b = std::move(a);
    EXPECT_EQ(a.size(), 0u);
    EXPECT_EQ(b.data()[0], 42);
    b.Resize(10000);
    EXPECT_EQ(b.data()[0], 42);
    EXPECT_EQ(b.size(), 10000u);
    b.Resize(1);
    EXPECT_EQ(b.size(), 1u);
    b.Reset();
    EXPECT_TRUE(b.empty());
}

// ---------------------------------------------------------------- sizes and context lengths

// Every plaintext size around the AES block and chunk boundaries, with contexts that do and do
// not fit the stack buffer for header || context: the keyed context is reused across all of
// them (only the IV is reset), and each value opens again and refuses a flipped tag bit.
TEST(Envelope, RoundTripsEverySizeOnOneReusedContext) {
    std::string keyhex;
    for (int i = 0; i < 32; ++i)
        keyhex += "0123456789abcdef"[(i * 7) % 16], keyhex += "fedcba9876543210"[(i * 5) % 16];
    auto ring = mp::Keyring::Parse("3 " + keyhex + "\n");
    uint8_t nonce[12];
    for (int i = 0; i < 12; ++i) nonce[i] = static_cast<uint8_t>(0xa0 + i);
    std::vector<size_t> sizes;
    for (size_t n = 0; n <= 80; ++n) sizes.push_back(n);
    for (size_t n :
         {95, 96, 97, 120, 127, 128, 129, 255, 256, 257, 500, 1023, 1024, 1025, 4096, 8192})
        sizes.push_back(n);
    for (size_t ctx_len : {0, 1, 15, 16, 41, 239, 240, 300}) {
        std::string ctx(ctx_len, '\0');
        for (size_t i = 0; i < ctx_len; ++i) ctx[i] = static_cast<char>(i * 13 + 1);
        for (size_t n : sizes) {
            std::string pt(n, '\0');
            for (size_t i = 0; i < n; ++i) pt[i] = static_cast<char>(i * 31 + n);
            std::vector<uint8_t> sealed(mp::SealedSize(n)), again(mp::SealedSize(n));
            mp::SealWithNonce(ring.Get(3), nonce, mp::AsBytes(ctx), mp::AsBytes(pt), sealed.data());
            mp::SealWithNonce(ring.Get(3), nonce, mp::AsBytes(ctx), mp::AsBytes(pt), again.data());
            ASSERT_EQ(sealed, again) << "size " << n << " context " << ctx_len;
            EXPECT_EQ(OpenStr(ring, ctx, sealed), pt);
            auto bad = sealed;
            bad.back() ^= 0x10;
            EXPECT_EQ(Code([&] { OpenStr(ring, ctx, bad); }), "MC102");
            EXPECT_EQ(OpenStr(ring, ctx, sealed), pt);  // the context recovers after a failure
        }
    }
}

TEST(SecureBuffer, ScopedCleanseWipesOnEveryPath) {
    char secret[32];
    std::memset(secret, 'S', sizeof secret);
    try {
        mp::ScopedCleanse wipe(secret, sizeof secret);
        throw std::runtime_error("error path");
    } catch (const std::runtime_error&) {
    }
    EXPECT_EQ(std::string(secret, sizeof secret), std::string(sizeof secret, '\0'));
    std::memset(secret, 'S', sizeof secret);
    {
        mp::ScopedCleanse wipe(secret, sizeof secret);
        wipe.Release();  // handed over: not wiped
    }
    EXPECT_EQ(secret[0], 'S');
}
