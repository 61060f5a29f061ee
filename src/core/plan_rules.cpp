// See plan_rules.hpp.
#include "core/plan_rules.hpp"

#include <cstdio>

namespace mcp_platform {

CounterChange ClassifyChange(const InstanceState& before, const InstanceState& after) noexcept {
    const bool counted_before = before.exists && before.status_active;
    const bool counted_after = after.exists && after.status_active;
    if (!counted_before && counted_after) return CounterChange::kActivate;
    if (counted_before && !counted_after) return CounterChange::kDeactivate;
    if (counted_before && counted_after && before.past_expires_at && !after.past_expires_at)
        return CounterChange::kRevive;
    return CounterChange::kNone;
}

long EffectiveLimit(const PlanView& plan) noexcept {
    if (!plan.is_pro || plan.plan_expired) return 1;
    if (!plan.has_max_instances) return -1;
    return plan.max_instances;
}

void FormatLimitError(const PlanView& plan, long active_instances, char* message,
                      std::size_t message_size, char* detail, std::size_t detail_size, char* hint,
                      std::size_t hint_size) noexcept {
    const long limit = EffectiveLimit(plan);
    const char* noun = limit == 1 ? "instance" : "instances";
    if (plan.is_pro && plan.plan_expired)
        std::snprintf(message, message_size,
                      "plan limit reached: the pro plan has expired and counts as the free plan, "
                      "which allows %ld active %s",
                      limit, noun);
    else if (limit < 0)  // unlimited plans never refuse; kept total for the unit tests
        std::snprintf(message, message_size, "plan limit reached: the pro plan is unlimited");
    else
        std::snprintf(message, message_size, "plan limit reached: the %s plan allows %ld active %s",
                      plan.is_pro ? "pro" : "free", limit, noun);
    // Fixed, documented form for programs: the effective limit and the user's active count.
    std::snprintf(detail, detail_size, "limit=%ld active=%ld", limit, active_instances);
    if (plan.is_pro && !plan.plan_expired)
        std::snprintf(
            hint, hint_size,
            "Deactivate or delete an active instance, or raise the plan's max_instances.");
    else if (plan.is_pro)
        std::snprintf(hint, hint_size,
                      "Deactivate or delete an active instance, or renew the pro plan.");
    else
        std::snprintf(hint, hint_size,
                      "Deactivate or delete an active instance, or upgrade to the pro plan.");
}

}  // namespace mcp_platform
