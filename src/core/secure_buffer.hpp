// Memory for key bytes and plaintext: page-aligned, mlock()ed so it is never swapped out,
// excluded from core dumps (MADV_DONTDUMP), and wiped with OPENSSL_cleanse before it is freed.
// Locking is best effort (RLIMIT_MEMLOCK may be small); locked() says whether it worked.
#pragma once

#include "core/no_postgres.hpp"

#include <openssl/crypto.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace mcp_platform {

class SecureBuffer {
public:
    SecureBuffer() noexcept = default;

    explicit SecureBuffer(size_t size) { Allocate(size); }

    ~SecureBuffer() { Release(); }

    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;

    SecureBuffer(SecureBuffer&& other) noexcept { Steal(other); }
    SecureBuffer& operator=(SecureBuffer&& other) noexcept {
        if (this != &other) {
            Release();
            Steal(other);
        }
        return *this;
    }

    uint8_t* data() noexcept { return data_; }
    const uint8_t* data() const noexcept { return data_; }
    size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    bool locked() const noexcept { return locked_; }

    // Grows (or shrinks) the usable size, keeping the first min(old, new) bytes. The old
    // allocation is wiped before it is freed.
    void Resize(size_t new_size) {
        if (new_size <= capacity_) {
            if (new_size < size_) OPENSSL_cleanse(data_ + new_size, size_ - new_size);
            size_ = new_size;
            return;
        }
        SecureBuffer bigger(new_size);
        if (size_ > 0) std::memcpy(bigger.data_, data_, size_);
        *this = std::move(bigger);
    }

    // Wipes and frees now (the destructor does the same).
    void Reset() noexcept { Release(); }

private:
    static size_t PageSize() noexcept {
        long page = sysconf(_SC_PAGESIZE);
        return page > 0 ? static_cast<size_t>(page) : 4096;
    }

    void Allocate(size_t size) {
        if (size == 0) return;
        size_t page = PageSize();
        size_t capacity = (size + page - 1) / page * page;
        void* memory = nullptr;
        if (posix_memalign(&memory, page, capacity) != 0 || memory == nullptr)
            throw std::bad_alloc();
        std::memset(memory, 0, capacity);
        locked_ = mlock(memory, capacity) == 0;
#ifdef MADV_DONTDUMP
        (void)madvise(memory, capacity, MADV_DONTDUMP);
#endif
        data_ = static_cast<uint8_t*>(memory);
        size_ = size;
        capacity_ = capacity;
    }

    void Release() noexcept {
        if (data_ == nullptr) return;
        OPENSSL_cleanse(data_, capacity_);
#ifdef MADV_DODUMP
        (void)madvise(data_, capacity_, MADV_DODUMP);
#endif
        if (locked_) (void)munlock(data_, capacity_);
        std::free(data_);
        data_ = nullptr;
        size_ = capacity_ = 0;
        locked_ = false;
    }

    void Steal(SecureBuffer& other) noexcept {
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        locked_ = std::exchange(other.locked_, false);
    }

    uint8_t* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
    bool locked_ = false;
};

// Wipes a caller-owned region (stack array, palloc'd buffer) when the scope ends, on every
// path including exceptions.
class ScopedCleanse {
public:
    ScopedCleanse(void* data, size_t size) noexcept : data_(data), size_(size) {}
    ~ScopedCleanse() {
        if (data_ != nullptr && size_ > 0) OPENSSL_cleanse(data_, size_);
    }
    ScopedCleanse(const ScopedCleanse&) = delete;
    ScopedCleanse& operator=(const ScopedCleanse&) = delete;
    // The region was handed to someone who wipes it (for example returned to Postgres).
    void Release() noexcept { data_ = nullptr; }

private:
    void* data_;
    size_t size_;
};

}  // namespace mcp_platform
