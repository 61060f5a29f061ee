#include "core/keyring.hpp"

#include "core/errors.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace mcp_platform {

namespace {

constexpr char kFingerprintLabel[] = "mcp_platform key fingerprint v1";

const EVP_CIPHER* Aes256Gcm() {
    // Fetched once per process: the provider lookup is as costly as several encryptions.
    static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
    if (cipher == nullptr)
        throw SqlError(sqlstate::kInternal, "AES-256-GCM is not available in OpenSSL");
    return cipher;
}

int HexValue(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool IsBlank(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

[[noreturn]] void LineError(size_t line, const char* what) {
    throw SqlError(
        sqlstate::kNoKey, "invalid keyring line " + std::to_string(line) + ": " + what, {},
        "Each line must be \"<version> <64 hex characters>\" with a positive integer version.");
}

CipherCtxPtr NewKeyedContext(const uint8_t* key, bool encrypt) {
    CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
    if (!ctx) throw std::bad_alloc();
    if (EVP_CipherInit_ex2(ctx.get(), Aes256Gcm(), key, nullptr, encrypt ? 1 : 0, nullptr) != 1)
        throw SqlError(sqlstate::kInternal, "could not initialise the AES-256-GCM context");
    return ctx;
}

}  // namespace

KeyVersion::KeyVersion(uint32_t version, SecureBuffer key)
    : version_(version), key_(std::move(key)) {
    if (key_.size() != kKeySize)
        throw SqlError(sqlstate::kNoKey,
                       "key version " + std::to_string(version) + " is not 32 bytes");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
             reinterpret_cast<const unsigned char*>(kFingerprintLabel),
             sizeof(kFingerprintLabel) - 1, mac, &mac_len) == nullptr)
        throw SqlError(sqlstate::kInternal, "could not compute a key fingerprint");
    static const char digits[] = "0123456789abcdef";
    fingerprint_.reserve(16);
    for (int i = 0; i < 8; ++i) {
        fingerprint_.push_back(digits[mac[i] >> 4]);
        fingerprint_.push_back(digits[mac[i] & 15]);
    }
    OPENSSL_cleanse(mac, sizeof(mac));
}

// The contexts' key schedules live in OpenSSL memory that EVP_CIPHER_CTX_free clears.
KeyVersion::~KeyVersion() = default;

EVP_CIPHER_CTX* KeyVersion::EncryptContext() {
    if (!encrypt_ctx_) encrypt_ctx_ = NewKeyedContext(key_.data(), true);
    return encrypt_ctx_.get();
}

EVP_CIPHER_CTX* KeyVersion::DecryptContext() {
    if (!decrypt_ctx_) decrypt_ctx_ = NewKeyedContext(key_.data(), false);
    return decrypt_ctx_.get();
}

Keyring Keyring::Parse(std::string_view text) {
    Keyring ring;
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;

        size_t hash = line.find('#');
        if (hash != std::string_view::npos) line = line.substr(0, hash);
        size_t i = 0;
        while (i < line.size() && IsBlank(line[i])) ++i;
        size_t j = line.size();
        while (j > i && IsBlank(line[j - 1])) --j;
        line = line.substr(i, j - i);
        if (line.empty()) continue;

        // version
        size_t k = 0;
        uint64_t version = 0;
        while (k < line.size() && line[k] >= '0' && line[k] <= '9') {
            version = version * 10 + static_cast<uint64_t>(line[k] - '0');
            if (version > kMaxKeyVersion)
                LineError(line_no, "version out of range (1 .. 2147483647)");
            ++k;
        }
        if (k == 0) LineError(line_no, "expected a positive integer version");
        if (version == 0) LineError(line_no, "version must be positive");
        if (k == line.size() || !IsBlank(line[k]))
            LineError(line_no, "expected whitespace and a 64-character hex key after the version");
        while (k < line.size() && IsBlank(line[k])) ++k;
        std::string_view hex = line.substr(k);
        if (hex.size() != 2 * kKeySize) LineError(line_no, "key must be exactly 64 hex characters");

        SecureBuffer key(kKeySize);
        for (size_t b = 0; b < kKeySize; ++b) {
            int hi = HexValue(hex[2 * b]);
            int lo = HexValue(hex[2 * b + 1]);
            if (hi < 0 || lo < 0) LineError(line_no, "key contains a non-hex character");
            key.data()[b] = static_cast<uint8_t>(hi << 4 | lo);
        }
        if (ring.keys_.count(static_cast<uint32_t>(version)) != 0)
            LineError(line_no, ("duplicate key version " + std::to_string(version)).c_str());
        ring.Add(static_cast<uint32_t>(version), std::move(key));
    }
    if (ring.empty())
        throw SqlError(
            sqlstate::kNoKey, "keyring contains no keys", {},
            "Add a line \"<version> <64 hex characters>\", for example from: openssl rand -hex 32");
    ring.SetActive(0);
    return ring;
}

void Keyring::Add(uint32_t version, SecureBuffer key) {
    if (version == 0 || version > kMaxKeyVersion)
        throw SqlError(sqlstate::kNoKey, "invalid key version " + std::to_string(version));
    if (keys_.count(version) != 0)
        throw SqlError(sqlstate::kNoKey, "duplicate key version " + std::to_string(version));
    keys_.emplace(version, std::make_unique<KeyVersion>(version, std::move(key)));
    if (active_ == 0 || version > active_) active_ = version;
}

void Keyring::SetActive(uint32_t override_version) {
    if (keys_.empty()) throw SqlError(sqlstate::kNoKey, "keyring contains no keys");
    if (override_version == 0) {
        active_ = keys_.rbegin()->first;
        return;
    }
    if (keys_.count(override_version) == 0)
        throw SqlError(
            sqlstate::kNoKey,
            "active key version " + std::to_string(override_version) + " is not in the keyring", {},
            "Set mcp_platform.active_key_version to a version present in the keyring, or to 0 for "
            "the highest.");
    active_ = override_version;
}

KeyVersion& Keyring::Active() {
    if (active_ == 0) throw SqlError(sqlstate::kNoKey, "no encryption key is configured");
    return *keys_.at(active_);
}

KeyVersion* Keyring::Find(uint32_t version) noexcept {
    auto it = keys_.find(version);
    return it == keys_.end() ? nullptr : it->second.get();
}

KeyVersion& Keyring::Get(uint32_t version) {
    KeyVersion* key = Find(version);
    if (key == nullptr)
        throw SqlError(sqlstate::kNoKey,
                       "key version " + std::to_string(version) + " is not in the keyring", {},
                       "Add the key version that encrypted this value to the keyring.");
    return *key;
}

std::vector<uint32_t> Keyring::Versions() const {
    std::vector<uint32_t> out;
    out.reserve(keys_.size());
    for (const auto& entry : keys_) out.push_back(entry.first);
    return out;
}

SecureBuffer ReadKeyFile(const std::string& path) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw SqlError(
            sqlstate::kNoKey, "could not open key file \"" + path + "\": " + std::strerror(errno),
            {}, "Check mcp_platform.key_file and that the server's OS user can read the file.");
    struct FdCloser {
        int fd;
        ~FdCloser() { close(fd); }
    } closer{fd};
    struct stat st;
    if (fstat(fd, &st) != 0)
        throw SqlError(sqlstate::kNoKey,
                       "could not stat key file \"" + path + "\": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw SqlError(sqlstate::kNoKey, "key file \"" + path + "\" is not a regular file");
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        throw SqlError(sqlstate::kNoKey, "key file \"" + path + "\" has group or world access", {},
                       "File must have permissions u=rw (0600) or less: chmod 600 the file.");
    constexpr size_t kMaxKeyFile = 1 << 20;
    SecureBuffer buffer(4096);
    size_t used = 0;
    for (;;) {
        if (used == buffer.size()) {
            if (buffer.size() >= kMaxKeyFile)
                throw SqlError(sqlstate::kNoKey, "key file \"" + path + "\" is larger than 1 MB");
            buffer.Resize(buffer.size() * 2);
        }
        ssize_t n = read(fd, buffer.data() + used, buffer.size() - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw SqlError(sqlstate::kNoKey,
                           "could not read key file \"" + path + "\": " + std::strerror(errno));
        }
        if (n == 0) break;
        used += static_cast<size_t>(n);
    }
    buffer.Resize(used);
    return buffer;
}

}  // namespace mcp_platform
