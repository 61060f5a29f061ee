// The rules of the OAuth refresh lifecycle that need no database: when a credential becomes
// due for a refresh, and what a failed refresh does to its state (backoff, failure days,
// needs_reauth). Used by src/pg/refresh.cpp; unit-tested on its own.
//
// Times are microseconds on PostgreSQL's timestamptz scale (since 2000-01-01 00:00 UTC, which
// is a UTC midnight, so whole days of 86,400 s are UTC days).
#pragma once

#include "core/no_postgres.hpp"

#include <cstdint>

namespace mcp_platform {

using Micros = std::int64_t;

inline constexpr Micros kMicrosPerSecond = 1000000;
inline constexpr Micros kMicrosPerDay = 86400 * kMicrosPerSecond;

struct RefreshSettings {
    Micros margin = 15 * 60 * kMicrosPerSecond;       // refresh_margin
    Micros idle_interval = 86400 * kMicrosPerSecond;  // refresh_idle_interval
    Micros backoff_base = 30 * kMicrosPerSecond;      // refresh_backoff_base
    Micros backoff_max = 3600 * kMicrosPerSecond;     // refresh_backoff_max
    int max_failure_days = 4;                         // refresh_max_failure_days
};

// When tokens stored at `stored_at` become due: `margin` before the access token expires, but
// never earlier than half-way through the token's own lifetime; and at the latest
// `idle_interval` after they were stored (a refresh token that expires when unused is kept
// alive). `has_expiry` false: the access token has no expiry, only the idle rule applies.
// Saturates instead of overflowing.
Micros RefreshDueAt(bool has_expiry, Micros expires_at, Micros stored_at,
                    const RefreshSettings& settings) noexcept;

enum class RefreshState { kOk, kCooling, kNeedsReauth, kRevoked };

// "ok", "cooling", "needs_reauth", "revoked": the spelling in the database.
const char* RefreshStateName(RefreshState state) noexcept;

// The failure bookkeeping of one credential.
struct FailureState {
    int failures = 0;       // failed attempts since the last success (the backoff exponent)
    int failure_days = 0;   // distinct UTC days with a failure since the last success
    Micros last_counted_failure = 0;  // when the last failure counted in failure_days was;
                                      // meaningful only when failure_days > 0
};

struct FailureOutcome {
    RefreshState state = RefreshState::kCooling;
    FailureState failure;
    bool has_next_attempt = false;  // false for needs_reauth: it is never claimed again
    Micros next_attempt_at = 0;
};

// A refresh failed at `now`. A failure counts towards failure_days at most once per UTC day;
// more than max_failure_days such days, or a permanent failure (the provider said the grant
// is gone), make the credential needs_reauth. Otherwise it is cooling until
// now + min(backoff_base * 2^(failures - 1), backoff_max).
FailureOutcome AfterFailure(const FailureState& before, Micros now, bool permanent,
                            const RefreshSettings& settings) noexcept;

}  // namespace mcp_platform
