#include "core/nonce_pool.hpp"

#include "core/errors.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cstring>

namespace mcp_platform {

namespace {
pid_t (*g_current_pid)() = getpid;
}  // namespace

void NoncePool::SetPidFunction(pid_t (*current_pid)()) noexcept {
    g_current_pid = current_pid != nullptr ? current_pid : getpid;
}

NoncePool::NoncePool(size_t batch_nonces)
    : buffer_(batch_nonces * kNonceSize), next_(buffer_.size()) {}

void NoncePool::Refill() {
    if (RAND_bytes(buffer_.data(), static_cast<int>(buffer_.size())) != 1)
        throw SqlError(sqlstate::kInternal, "could not generate random nonces");
    next_ = 0;
    filled_by_ = g_current_pid();
}

void NoncePool::Take(uint8_t* out) {
    if (next_ >= buffer_.size() || filled_by_ != g_current_pid()) Refill();
    std::memcpy(out, buffer_.data() + next_, kNonceSize);
    // A used nonce is erased so that a later fork could not even see it.
    OPENSSL_cleanse(buffer_.data() + next_, kNonceSize);
    next_ += kNonceSize;
}

size_t NoncePool::Available() const noexcept {
    if (filled_by_ != g_current_pid()) return 0;
    return (buffer_.size() - next_) / kNonceSize;
}

NoncePool& ProcessNoncePool() {
    static NoncePool pool;
    return pool;
}

}  // namespace mcp_platform
