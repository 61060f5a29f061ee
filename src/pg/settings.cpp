// Every mcp_platform.* setting, defined in one place (names, defaults, contexts and flags are
// part of the extension's interface: postgresql.conf files and ALTER SYSTEM use them), and
// mcp_setting(), which returns one of them as SHOW prints it, so SQL code can read a setting
// without repeating its default.
//
// Plan-limit enforcement deliberately has no setting: the limits live in mcp.user_plans, and
// there is no switch to turn enforcement off.
#include "pg/boundary.hpp"
#include "pg/keyring_source.hpp"
#include "pg/settings.hpp"

#include <climits>
#include <cstring>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/varlena.h"
}

namespace mcp_platform {

namespace settings {

char* key_file = nullptr;
char* key_command = nullptr;
int active_key_version = 0;
char* audit_retention = nullptr;
int maintenance_interval = 3600;
char* maintenance_databases = nullptr;
int tenant_scope = kTenantScopeTransaction;
int refresh_margin = 900;
int refresh_idle_interval = 86400;
int refresh_backoff_base = 30;
int refresh_backoff_max = 3600;
int refresh_max_failure_days = 4;
int refresh_clock_offset = 0;

}  // namespace settings

namespace {

constexpr const char kPrefix[] = "mcp_platform";

// Read by SQL only.
int oauth_state_ttl = 600;
int token_refresh_lease = 300;
int audit_partitions_ahead = 7;
bool audit_retention_trim = true;

// The key settings are applied at start-up and on every SIGHUP (even with the same text: a
// key file may have changed under the same name); the keyring is reloaded on next use.
void KeySettingAssigned(const char*, void*) { MarkKeyringStale(); }
void KeyVersionAssigned(int, void*) { MarkKeyringStale(); }

void DefineCredentialSettings() {
    DefineCustomStringVariable(
        "mcp_platform.key_file", "Keyring file: one \"<version> <64 hex characters>\" per line.",
        "Must not be readable by group or others. Relative paths are relative to the data "
        "directory.",
        &settings::key_file, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, KeySettingAssigned,
        nullptr);
    DefineCustomStringVariable(
        "mcp_platform.key_command",
        "Shell command that prints the keyring (like ssl_passphrase_command).", nullptr,
        &settings::key_command, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY, nullptr, KeySettingAssigned,
        nullptr);
    DefineCustomIntVariable(
        "mcp_platform.active_key_version",
        "Key version used for new encryptions; 0 means the highest version in the keyring.",
        nullptr, &settings::active_key_version, 0, 0, INT_MAX, PGC_SIGHUP, GUC_SUPERUSER_ONLY,
        nullptr, KeyVersionAssigned, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.oauth_state_ttl", "How long an OAuth state from mcp.begin_oauth stays valid.",
        nullptr, &oauth_state_ttl, 600, 1, 86400, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.token_refresh_lease",
        "How long mcp.claim_token_refresh hands a credential to one refresh worker.", nullptr,
        &token_refresh_lease, 300, 1, 86400, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

// Superuser-only (PGC_SUSET): a worker role must not be able to shorten its own backoff.
void DefineRefreshSettings() {
    DefineCustomIntVariable(
        "mcp_platform.refresh_margin",
        "How long before its access token expires a credential is due for a refresh.",
        "Never more than half of the token's own lifetime. Applies to tokens stored from then "
        "on.",
        &settings::refresh_margin, 900, 0, INT_MAX / 2, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "mcp_platform.refresh_idle_interval",
        "After how long without a refresh a credential is due anyway.",
        "Keeps refresh tokens that expire when unused alive. Applies to tokens stored from then "
        "on.",
        &settings::refresh_idle_interval, 86400, 1, INT_MAX / 2, PGC_SUSET, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.refresh_backoff_base",
        "Wait after a credential's first failed refresh; doubles with each further failure.",
        nullptr, &settings::refresh_backoff_base, 30, 0, INT_MAX / 2, PGC_SUSET, GUC_UNIT_S,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.refresh_backoff_max", "The longest wait between two refresh attempts.",
        nullptr, &settings::refresh_backoff_max, 3600, 0, INT_MAX / 2, PGC_SUSET, GUC_UNIT_S,
        nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.refresh_max_failure_days",
        "After failures on more than this many distinct UTC days a credential needs "
        "re-authorisation.",
        "Failed attempts count at most once per day, so a provider outage does not exhaust "
        "every credential.",
        &settings::refresh_max_failure_days, 4, 0, 3650, PGC_SUSET, 0, nullptr, nullptr,
        nullptr);
    DefineCustomIntVariable(
        "mcp_platform.refresh_clock_offset",
        "For tests only: shifts the refresh lifecycle's clock by this much.",
        "Lets a test simulate days passing without sleeping. Leave it at 0.",
        &settings::refresh_clock_offset, 0, -INT_MAX, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
}

const config_enum_entry kTenantScopes[] = {
    {"transaction", kTenantScopeTransaction, false},
    {"session", kTenantScopeSession, false},
    {nullptr, 0, false},
};

void DefineTenancySettings() {
    DefineCustomEnumVariable(
        "mcp_platform.tenant_scope",
        "Whether mcp.user_id counts only in the transaction that set it, or for the session.",
        "transaction (the default): a tenant set at session level or left from an earlier "
        "transaction is refused with MC301, so a pooled connection never carries one request's "
        "tenant into the next. session: for tools that hold one connection per tenant.",
        &settings::tenant_scope, kTenantScopeTransaction, kTenantScopes, PGC_SUSET, 0, nullptr,
        nullptr, nullptr);
}

void DefineAuditSettings() {
    DefineCustomStringVariable(
        "mcp_platform.audit_retention",
        "Default retention of mcp.cleanup_old_token_audit_logs() and of the maintenance runs.",
        "An interval, e.g. '90 days'. Audit rows older than this are removed.",
        &settings::audit_retention, "90 days", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomBoolVariable(
        "mcp_platform.audit_retention_trim",
        "Whether the maintenance runs trim the boundary day of the audit retention row by row.",
        "on: rows are removed as soon as they are older than the retention (the boundary day is "
        "trimmed with DELETE); off: whole days only, a day's partition is dropped once all of it "
        "has expired (rows live up to a day longer, nothing is deleted row by row).",
        &audit_retention_trim, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.audit_partitions_ahead",
        "Number of future daily audit partitions mcp.run_maintenance() keeps created.", nullptr,
        &audit_partitions_ahead, 7, 1, 366, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "mcp_platform.maintenance_interval",
        "Time between two runs of mcp.run_maintenance() by the background worker; 0 disables them.",
        "Takes effect only with mcp_platform in shared_preload_libraries.",
        &settings::maintenance_interval, 3600, 0, INT_MAX / 1000, PGC_SIGHUP, GUC_UNIT_S, nullptr,
        nullptr, nullptr);
    // A postmaster-level setting can only be defined while the postmaster loads the library.
    if (!process_shared_preload_libraries_in_progress) return;
    DefineCustomStringVariable(
        "mcp_platform.maintenance_databases",
        "Databases in which the background worker runs mcp.run_maintenance().",
        "A comma-separated list; one worker per database. Takes effect only with mcp_platform in "
        "shared_preload_libraries.",
        &settings::maintenance_databases, "postgres", PGC_POSTMASTER, GUC_LIST_INPUT, nullptr,
        nullptr, nullptr);
}

// The settings mcp_setting never shows, whoever asks: they say where the keys are.
bool IsKeySource(const char* name) {
    return pg_strcasecmp(name, "mcp_platform.key_file") == 0 ||
           pg_strcasecmp(name, "mcp_platform.key_command") == 0;
}

}  // namespace

namespace {

bool g_preloaded = false;

// Whether a library list setting (as SHOW prints it) names this library: "mcp_platform",
// "$libdir/mcp_platform" or either with ".so", among comma-separated, possibly quoted items.
bool ListsThisLibrary(const char* setting) {
    const char* value = GetConfigOption(setting, true, false);
    if (value == nullptr) return false;
    char* copy = pstrdup(value);
    List* items = NIL;
    bool listed = false;
    if (SplitDirectoriesString(copy, ',', &items)) {
        ListCell* cell;
        foreach (cell, items) {
            const char* item = static_cast<const char*>(lfirst(cell));
            const char* base = strrchr(item, '/');
            base = base != nullptr ? base + 1 : item;
            if (strcmp(base, "mcp_platform") == 0 || strcmp(base, "mcp_platform.so") == 0)
                listed = true;
        }
    }
    list_free_deep(items);
    pfree(copy);
    return listed;
}

}  // namespace

bool LibraryPreloaded() { return g_preloaded; }

void DefineSettings() {
    g_preloaded = process_shared_preload_libraries_in_progress ||
                  ListsThisLibrary("shared_preload_libraries") ||
                  ListsThisLibrary("session_preload_libraries");
    DefineCredentialSettings();
    DefineTenancySettings();
    DefineRefreshSettings();
    DefineAuditSettings();
    // Last: any other mcp_platform.* name is refused from now on (placeholders already set
    // under the prefix are removed with a warning).
    MarkGUCPrefixReserved(kPrefix);
}

}  // namespace mcp_platform

// mcp_setting(name text) → text, STRICT: the current value of the setting `name` (which must
// start with "mcp_platform."), as SHOW prints it (with its unit). 22023 for any other name,
// 42501 for the key source settings (never shown) and, as SHOW, for a superuser-only setting
// the caller may not read; 42704 for an mcp_platform name that does not exist.
MCP_PG_FUNCTION_C(mcp_setting) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    char* name = text_to_cstring(PG_GETARG_TEXT_PP(0));
    const size_t prefix_len = strlen(mcp_platform::kPrefix);
    if (pg_strncasecmp(name, mcp_platform::kPrefix, prefix_len) != 0 || name[prefix_len] != '.')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("\"%s\" is not a setting of mcp_platform", name),
                        errhint("The name must start with \"mcp_platform.\".")));
    if (mcp_platform::IsKeySource(name))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("permission denied to read \"%s\"", name),
                        errdetail("The key source settings are never shown through this "
                                  "function.")));
    const char* value = GetConfigOptionByName(name, nullptr, false);
    PG_RETURN_TEXT_P(cstring_to_text(value != nullptr ? value : ""));
}
