// Unit tests for the core's error type (src/core/errors.hpp).
#include "core/errors.hpp"

#include <gtest/gtest.h>

namespace mcp_platform {
namespace {

TEST(SqlError, CarriesSqlstateMessageDetailAndHint) {
    SqlError e(sqlstate::kNoKey, "no key available", "detail text", "hint text");
    EXPECT_STREQ(e.sqlstate(), "MC101");
    EXPECT_STREQ(e.what(), "no key available");
    EXPECT_EQ(e.detail(), "detail text");
    EXPECT_EQ(e.hint(), "hint text");
}

TEST(SqlError, SqlstateIsExactlyFiveCharacters) {
    SqlError e("22023-and-more", "m");
    EXPECT_STREQ(e.sqlstate(), "22023");
}

TEST(SqlError, IsCatchableAsStdException) {
    try {
        throw SqlError(sqlstate::kPlanLimit, "plan limit reached");
    } catch (const std::exception& e) {
        EXPECT_STREQ(e.what(), "plan limit reached");
        return;
    }
    FAIL() << "not caught";
}

TEST(SqlError, ProjectSqlstatesAreStable) {
    EXPECT_STREQ(sqlstate::kPlanLimit, "MC001");
    EXPECT_STREQ(sqlstate::kServiceUnknown, "MC002");
    EXPECT_STREQ(sqlstate::kServiceInactive, "MC003");
    EXPECT_STREQ(sqlstate::kInstanceNotActive, "MC004");
    EXPECT_STREQ(sqlstate::kNoTenant, "MC301");
    EXPECT_STREQ(sqlstate::kFailedPrecondition, "55000");
    EXPECT_STREQ(sqlstate::kNoKey, "MC101");
    EXPECT_STREQ(sqlstate::kDecryptFailed, "MC102");
    EXPECT_STREQ(sqlstate::kMalformedCiphertext, "MC103");
    EXPECT_STREQ(sqlstate::kOAuthStateInvalid, "MC201");
    EXPECT_STREQ(sqlstate::kCredentialTypeMismatch, "MC202");
    EXPECT_STREQ(sqlstate::kLeaseLost, "MC203");
}

}  // namespace
}  // namespace mcp_platform
