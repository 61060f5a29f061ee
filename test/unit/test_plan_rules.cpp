// Unit tests for the plan-limit rules (src/core/plan_rules.hpp).
#include "core/plan_rules.hpp"

#include <gtest/gtest.h>

#include <string>

namespace mcp_platform {
namespace {

InstanceState Row(bool active, bool past = false) { return InstanceState{true, active, past}; }
const InstanceState kNoRow{};

TEST(ClassifyChange, InsertCountsOnlyActiveRows) {
    EXPECT_EQ(ClassifyChange(kNoRow, Row(true)), CounterChange::kActivate);
    EXPECT_EQ(ClassifyChange(kNoRow, Row(true, true)), CounterChange::kActivate);
    EXPECT_EQ(ClassifyChange(kNoRow, Row(false)), CounterChange::kNone);
}

TEST(ClassifyChange, DeleteUncountsActiveRows) {
    EXPECT_EQ(ClassifyChange(Row(true), kNoRow), CounterChange::kDeactivate);
    EXPECT_EQ(ClassifyChange(Row(true, true), kNoRow), CounterChange::kDeactivate);
    EXPECT_EQ(ClassifyChange(Row(false), kNoRow), CounterChange::kNone);
}

TEST(ClassifyChange, StatusChanges) {
    EXPECT_EQ(ClassifyChange(Row(false), Row(true)), CounterChange::kActivate);
    EXPECT_EQ(ClassifyChange(Row(true), Row(false)), CounterChange::kDeactivate);
    EXPECT_EQ(ClassifyChange(Row(false), Row(false)), CounterChange::kNone);
    EXPECT_EQ(ClassifyChange(Row(false, true), Row(true, false)), CounterChange::kActivate);
}

TEST(ClassifyChange, ExpiryChangesOfCountedRows) {
    // renewal of a counted row past its expiry makes it truly active again: checked
    EXPECT_EQ(ClassifyChange(Row(true, true), Row(true, false)), CounterChange::kRevive);
    // moving the expiry of an active row, or into the past: no change, no check
    EXPECT_EQ(ClassifyChange(Row(true, false), Row(true, false)), CounterChange::kNone);
    EXPECT_EQ(ClassifyChange(Row(true, false), Row(true, true)), CounterChange::kNone);
    EXPECT_EQ(ClassifyChange(Row(true, true), Row(true, true)), CounterChange::kNone);
}

TEST(EffectiveLimit, PerSpec) {
    EXPECT_EQ(EffectiveLimit(PlanView{false, true, 1, false}), 1);
    EXPECT_EQ(EffectiveLimit(PlanView{false, true, 1, true}), 1);
    EXPECT_EQ(EffectiveLimit(PlanView{true, false, 0, false}), -1);
    EXPECT_EQ(EffectiveLimit(PlanView{true, true, 5, false}), 5);
    // an expired pro plan counts as free
    EXPECT_EQ(EffectiveLimit(PlanView{true, false, 0, true}), 1);
    EXPECT_EQ(EffectiveLimit(PlanView{true, true, 5, true}), 1);
}

struct Formatted {
    char message[256], detail[256], hint[256];
};
Formatted Format(const PlanView& p, long active) {
    Formatted f;
    FormatLimitError(p, active, f.message, sizeof f.message, f.detail, sizeof f.detail, f.hint,
                     sizeof f.hint);
    return f;
}

TEST(FormatLimitError, NamesThePlanAndTheLimit) {
    Formatted free_plan = Format(PlanView{false, true, 1, false}, 1);
    EXPECT_STREQ(free_plan.message, "plan limit reached: the free plan allows 1 active instance");
    EXPECT_STREQ(free_plan.detail, "limit=1 active=1");
    EXPECT_STREQ(free_plan.hint,
                 "Deactivate or delete an active instance, or upgrade to the pro plan.");

    Formatted capped = Format(PlanView{true, true, 5, false}, 5);
    EXPECT_STREQ(capped.message, "plan limit reached: the pro plan allows 5 active instances");
    EXPECT_STREQ(capped.detail, "limit=5 active=5");

    Formatted expired = Format(PlanView{true, false, 0, true}, 3);
    EXPECT_STREQ(expired.message,
                 "plan limit reached: the pro plan has expired and counts as the free plan, "
                 "which allows 1 active instance");
    EXPECT_STREQ(expired.detail, "limit=1 active=3");
    EXPECT_STREQ(expired.hint, "Deactivate or delete an active instance, or renew the pro plan.");
}

TEST(FormatLimitError, TruncatesSafely) {
    char message[8], detail[4], hint[1];
    FormatLimitError(PlanView{}, 1, message, sizeof message, detail, sizeof detail, hint,
                     sizeof hint);
    EXPECT_EQ(std::string(message), "plan li");
    EXPECT_EQ(std::string(detail), "lim");
    EXPECT_EQ(std::string(hint), "");
}

}  // namespace
}  // namespace mcp_platform
