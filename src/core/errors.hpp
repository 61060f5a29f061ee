// Typed errors of the pure C++ core. The core includes no Postgres header; the glue layer
// (src/pg/boundary.hpp) turns an SqlError into ereport(ERROR) with the same SQLSTATE.
#pragma once

#include "core/no_postgres.hpp"

#include <stdexcept>
#include <string>

namespace mcp_platform {

// SQLSTATEs owned by the project (README "Reference"); never change their meaning.
namespace sqlstate {
inline constexpr const char kPlanLimit[] = "MC001";
inline constexpr const char kServiceUnknown[] = "MC002";   // release 1.0: also inactive
inline constexpr const char kServiceInactive[] = "MC003";
inline constexpr const char kInstanceNotActive[] = "MC004";
inline constexpr const char kNoTenant[] = "MC301";          // release 1.0: 42501
inline constexpr const char kTenantMismatch[] = "MC302";
inline constexpr const char kNoKey[] = "MC101";
inline constexpr const char kDecryptFailed[] = "MC102";
inline constexpr const char kMalformedCiphertext[] = "MC103";
inline constexpr const char kOAuthStateInvalid[] = "MC201";
inline constexpr const char kCredentialTypeMismatch[] = "MC202";
inline constexpr const char kLeaseLost[] = "MC203";  // src/pg/refresh.cpp and refresh.sql
inline constexpr const char kInsufficientPrivilege[] = "42501";
inline constexpr const char kStringTooLong[] = "22001";
inline constexpr const char kInvalidParameter[] = "22023";
inline constexpr const char kFailedPrecondition[] = "55000";
inline constexpr const char kInternal[] = "XX000";
}  // namespace sqlstate

// An error with a five-character SQLSTATE. Messages follow the PostgreSQL style (lowercase,
// no trailing period) and never contain a secret, key or ciphertext.
class SqlError : public std::runtime_error {
public:
    SqlError(const char* state, std::string message, std::string detail = {},
             std::string hint = {})
        : std::runtime_error(std::move(message)), detail_(std::move(detail)),
          hint_(std::move(hint)) {
        for (int i = 0; i < 5; ++i) sqlstate_[i] = state[i];
        sqlstate_[5] = '\0';
    }
    const char* sqlstate() const noexcept { return sqlstate_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    char sqlstate_[6];
    std::string detail_;
    std::string hint_;
};

}  // namespace mcp_platform
