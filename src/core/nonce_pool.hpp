// Per-process pool of random 96-bit GCM nonces, filled by one RAND_bytes call per batch.
//
// The pool remembers the pid that filled it. A forked child (every Postgres backend is a fork
// of the postmaster) sees a different pid and throws the inherited nonces away before taking
// any, so two processes never hand out the same buffered nonce. Nonces are never derived from
// a counter: each one is 96 fresh random bits.
#pragma once

#include "core/no_postgres.hpp"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mcp_platform {

inline constexpr size_t kNonceSize = 12;

class NoncePool {
public:
    explicit NoncePool(size_t batch_nonces = 512);

    // Writes one fresh nonce to out[0..11]. Throws SqlError XX000 if the RNG fails.
    void Take(uint8_t* out);

    // Where the current pid comes from (default getpid). The glue passes a function that
    // reads Postgres' MyProcPid, set in every child right after fork: the check then costs no
    // system call on the hot path.
    static void SetPidFunction(pid_t (*current_pid)()) noexcept;

    // Nonces left in the buffer for this process (0 after a fork). For tests.
    size_t Available() const noexcept;
    // The pid that filled the buffer (0 if never filled). For tests.
    pid_t filled_by() const noexcept { return filled_by_; }

private:
    void Refill();

    std::vector<uint8_t> buffer_;
    size_t next_ = 0;
    pid_t filled_by_ = 0;
};

// The process-wide pool used by the glue.
NoncePool& ProcessNoncePool();

}  // namespace mcp_platform
