#include "core/refresh_policy.hpp"

#include <limits>

namespace mcp_platform {

namespace {

constexpr Micros kMax = std::numeric_limits<Micros>::max();
constexpr Micros kMin = std::numeric_limits<Micros>::min();

Micros SaturatingAdd(Micros a, Micros b) noexcept {
    if (b > 0 && a > kMax - b) return kMax;
    if (b < 0 && a < kMin - b) return kMin;
    return a + b;
}

Micros SaturatingSub(Micros a, Micros b) noexcept {
    if (b == kMin) return a >= 0 ? kMax : a - b;
    return SaturatingAdd(a, -b);
}

// The UTC day a time falls in (floor division: times before 2000 are negative).
Micros DayOf(Micros t) noexcept {
    Micros day = t / kMicrosPerDay;
    if (t % kMicrosPerDay < 0) --day;
    return day;
}

}  // namespace

Micros RefreshDueAt(bool has_expiry, Micros expires_at, Micros stored_at,
                    const RefreshSettings& settings) noexcept {
    Micros idle_due = SaturatingAdd(stored_at, settings.idle_interval);
    if (!has_expiry) return idle_due;
    Micros lifetime = SaturatingSub(expires_at, stored_at);
    Micros lead = settings.margin;
    // never more than half of the token's own lifetime (a token already expired when stored,
    // or stored with its expiry in the past, is due at once)
    if (lifetime <= 0) return stored_at < idle_due ? stored_at : idle_due;
    if (lead > lifetime / 2) lead = lifetime / 2;
    Micros expiry_due = SaturatingSub(expires_at, lead);
    return expiry_due < idle_due ? expiry_due : idle_due;
}

const char* RefreshStateName(RefreshState state) noexcept {
    switch (state) {
        case RefreshState::kOk: return "ok";
        case RefreshState::kCooling: return "cooling";
        case RefreshState::kNeedsReauth: return "needs_reauth";
        case RefreshState::kRevoked: return "revoked";
    }
    return "ok";
}

FailureOutcome AfterFailure(const FailureState& before, Micros now, bool permanent,
                            const RefreshSettings& settings) noexcept {
    FailureOutcome out;
    out.failure = before;
    if (out.failure.failures < 0) out.failure.failures = 0;
    if (out.failure.failure_days < 0) out.failure.failure_days = 0;
    if (out.failure.failures < std::numeric_limits<int>::max()) ++out.failure.failures;
    // at most once per UTC day
    if (out.failure.failure_days == 0 || DayOf(before.last_counted_failure) != DayOf(now)) {
        if (out.failure.failure_days < std::numeric_limits<int>::max()) ++out.failure.failure_days;
        out.failure.last_counted_failure = now;
    }
    if (permanent || out.failure.failure_days > settings.max_failure_days) {
        out.state = RefreshState::kNeedsReauth;
        out.has_next_attempt = false;
        return out;
    }
    out.state = RefreshState::kCooling;
    Micros cap = settings.backoff_max < 0 ? 0 : settings.backoff_max;
    Micros delay = settings.backoff_base < 0 ? 0 : settings.backoff_base;
    for (int i = 1; i < out.failure.failures && delay < cap; ++i)
        delay = delay > kMax / 2 ? kMax : delay * 2;
    if (delay > cap) delay = cap;
    out.has_next_attempt = true;
    out.next_attempt_at = SaturatingAdd(now, delay);
    return out;
}

}  // namespace mcp_platform
