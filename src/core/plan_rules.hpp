// The rules of plan-limit enforcement that need no database: how a row change moves
// the per-user active-instance counter, what a plan's effective limit is, and the wording of
// the MC001 error. Used by the C trigger in src/pg/plan_limits.cpp; unit-tested on its own.
#pragma once

#include "core/no_postgres.hpp"

#include <cstddef>

namespace mcp_platform {

// One side of a row change of mcp.mcp_service_table, as the counter sees it.
struct InstanceState {
    bool exists = false;           // false for the OLD side of an INSERT / NEW side of a DELETE
    bool status_active = false;    // status = 'active': the row is counted
    bool past_expires_at = false;  // expires_at is not NULL and <= now()
};

// What a row change does to the counters.
enum class CounterChange {
    kNone,        // nothing counted changes
    kActivate,    // the row becomes counted: +1, only within the limit
    kDeactivate,  // the row stops being counted: -1, never refused
    kRevive,      // a counted row past its expires_at gets a future one: no change in the
                  // count, but it becomes truly active again, so the limit is checked (count
                  // <= limit) — after a downgrade a user over the limit cannot revive rows
};

CounterChange ClassifyChange(const InstanceState& before, const InstanceState& after) noexcept;

// A user's plan row, as the limit sees it.
struct PlanView {
    bool is_pro = false;
    bool has_max_instances = false;  // max_instances IS NOT NULL
    long max_instances = 0;
    bool plan_expired = false;  // expires_at is not NULL and <= now()
};

// The effective limit: free 1; pro max_instances, or unlimited (returns -1) when NULL; a pro
// plan past its expires_at counts as free.
long EffectiveLimit(const PlanView& plan) noexcept;

// Writes the MC001 message, detail and hint (PostgreSQL style: lowercase message, no trailing
// period; the hint is a sentence). The detail has a fixed form programs may parse:
// "limit=<effective limit> active=<active instances>". Each buffer is always NUL-terminated.
void FormatLimitError(const PlanView& plan, long active_instances, char* message,
                      std::size_t message_size, char* detail, std::size_t detail_size, char* hint,
                      std::size_t hint_size) noexcept;

}  // namespace mcp_platform
