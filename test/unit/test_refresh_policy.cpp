// Unit tests for the refresh lifecycle rules (src/core/refresh_policy.hpp).
#include "core/refresh_policy.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace mcp_platform {
namespace {

constexpr Micros kSec = kMicrosPerSecond;
constexpr Micros kMin = 60 * kSec;
constexpr Micros kHour = 60 * kMin;
constexpr Micros kDay = kMicrosPerDay;

const RefreshSettings kDefaults{};

TEST(RefreshDueAt, MarginBeforeExpiry) {
    // a one-hour token stored at t=0 is due 15 minutes before it expires
    EXPECT_EQ(RefreshDueAt(true, kHour, 0, kDefaults), kHour - 15 * kMin);
}

TEST(RefreshDueAt, NeverMoreThanHalfTheLifetime) {
    // a 10-minute token: half its life (5 min) before expiry, not 15 min (which would make it
    // due before it was stored)
    Micros stored = 1000 * kDay;
    EXPECT_EQ(RefreshDueAt(true, stored + 10 * kMin, stored, kDefaults), stored + 5 * kMin);
    // exactly twice the margin: both rules agree
    EXPECT_EQ(RefreshDueAt(true, stored + 30 * kMin, stored, kDefaults), stored + 15 * kMin);
}

TEST(RefreshDueAt, IdleIntervalKeepsLongLivedTokensFresh) {
    // a token valid for 30 days is refreshed after a day of no refresh
    EXPECT_EQ(RefreshDueAt(true, 30 * kDay, 0, kDefaults), kDay);
    // no expiry at all: only the idle rule
    EXPECT_EQ(RefreshDueAt(false, 0, 5 * kHour, kDefaults), 5 * kHour + kDay);
}

TEST(RefreshDueAt, AlreadyExpiredIsDueAtOnce) {
    EXPECT_EQ(RefreshDueAt(true, 10 * kSec, 20 * kSec, kDefaults), 20 * kSec);
    EXPECT_EQ(RefreshDueAt(true, 20 * kSec, 20 * kSec, kDefaults), 20 * kSec);
}

TEST(RefreshDueAt, SettingsApply) {
    RefreshSettings s;
    s.margin = 5 * kMin;
    s.idle_interval = 2 * kHour;
    EXPECT_EQ(RefreshDueAt(true, kHour, 0, s), 55 * kMin);
    EXPECT_EQ(RefreshDueAt(true, 10 * kHour, 0, s), 2 * kHour);
}

TEST(RefreshDueAt, SaturatesInsteadOfOverflowing) {
    Micros max = std::numeric_limits<Micros>::max();
    Micros min = std::numeric_limits<Micros>::min();
    EXPECT_EQ(RefreshDueAt(false, 0, max - kSec, kDefaults), max);
    // a far-future expiry from a far-past store: the idle rule wins, no overflow
    EXPECT_EQ(RefreshDueAt(true, max, min + kSec, kDefaults), min + kSec + kDefaults.idle_interval);
}

TEST(AfterFailure, BackoffDoublesUpToTheCap) {
    FailureState state;
    Micros now = 100 * kDay;
    Micros expected[] = {30 * kSec, 60 * kSec, 120 * kSec, 240 * kSec, 480 * kSec,
                         960 * kSec, 1920 * kSec, kHour, kHour};
    for (Micros delay : expected) {
        FailureOutcome out = AfterFailure(state, now, false, kDefaults);
        ASSERT_EQ(out.state, RefreshState::kCooling);
        ASSERT_TRUE(out.has_next_attempt);
        EXPECT_EQ(out.next_attempt_at - now, delay) << "after failure " << out.failure.failures;
        state = out.failure;
    }
    EXPECT_EQ(state.failures, 9);
    EXPECT_EQ(state.failure_days, 1);  // all on one day
}

TEST(AfterFailure, HugeFailureCountsStayAtTheCap) {
    FailureState state;
    state.failures = std::numeric_limits<int>::max();
    state.failure_days = 1;
    state.last_counted_failure = 0;
    FailureOutcome out = AfterFailure(state, kHour, false, kDefaults);
    EXPECT_EQ(out.failure.failures, std::numeric_limits<int>::max());
    EXPECT_EQ(out.next_attempt_at, kHour + kHour);
}

TEST(AfterFailure, CountsOnceAUtcDay) {
    FailureState state;
    Micros day0 = 200 * kDay;
    // day 1: many failures count once
    for (Micros t : {day0 + kHour, day0 + 2 * kHour, day0 + 23 * kHour + 59 * kMin}) {
        FailureOutcome out = AfterFailure(state, t, false, kDefaults);
        EXPECT_EQ(out.state, RefreshState::kCooling);
        state = out.failure;
    }
    EXPECT_EQ(state.failure_days, 1);
    // a minute later it is the next UTC day
    state = AfterFailure(state, day0 + kDay + kMin, false, kDefaults).failure;
    EXPECT_EQ(state.failure_days, 2);
    state = AfterFailure(state, day0 + 2 * kDay, false, kDefaults).failure;
    state = AfterFailure(state, day0 + 3 * kDay, false, kDefaults).failure;
    EXPECT_EQ(state.failure_days, 4);
    // four days is not more than four: still cooling
    FailureOutcome same_day = AfterFailure(state, day0 + 3 * kDay + kHour, false, kDefaults);
    EXPECT_EQ(same_day.state, RefreshState::kCooling);
    // the fifth distinct day exhausts it
    FailureOutcome fifth = AfterFailure(state, day0 + 4 * kDay, false, kDefaults);
    EXPECT_EQ(fifth.state, RefreshState::kNeedsReauth);
    EXPECT_FALSE(fifth.has_next_attempt);
    EXPECT_EQ(fifth.failure.failure_days, 5);
}

TEST(AfterFailure, DaysBefore2000AreUtcDaysToo) {
    FailureState state;
    Micros t = -3 * kDay + kHour;  // 1999-12-29 01:00 UTC
    state = AfterFailure(state, t, false, kDefaults).failure;
    state = AfterFailure(state, t + 22 * kHour, false, kDefaults).failure;  // same day, 23:00
    EXPECT_EQ(state.failure_days, 1);
    state = AfterFailure(state, t + 23 * kHour, false, kDefaults).failure;  // next day
    EXPECT_EQ(state.failure_days, 2);
}

TEST(AfterFailure, PermanentFailureNeedsReauthAtOnce) {
    FailureOutcome out = AfterFailure(FailureState{}, kDay, true, kDefaults);
    EXPECT_EQ(out.state, RefreshState::kNeedsReauth);
    EXPECT_FALSE(out.has_next_attempt);
    EXPECT_EQ(out.failure.failures, 1);
    EXPECT_EQ(out.failure.failure_days, 1);
}

TEST(AfterFailure, MaxFailureDaysSetting) {
    RefreshSettings s;
    s.max_failure_days = 0;
    EXPECT_EQ(AfterFailure(FailureState{}, kDay, false, s).state, RefreshState::kNeedsReauth);
    s.max_failure_days = 1;
    EXPECT_EQ(AfterFailure(FailureState{}, kDay, false, s).state, RefreshState::kCooling);
}

TEST(RefreshStateName, DatabaseSpelling) {
    EXPECT_STREQ(RefreshStateName(RefreshState::kOk), "ok");
    EXPECT_STREQ(RefreshStateName(RefreshState::kCooling), "cooling");
    EXPECT_STREQ(RefreshStateName(RefreshState::kNeedsReauth), "needs_reauth");
    EXPECT_STREQ(RefreshStateName(RefreshState::kRevoked), "revoked");
}

}  // namespace
}  // namespace mcp_platform
