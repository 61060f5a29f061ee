// The keyring source: mcp_platform.key_file or mcp_platform.key_command (superuser-only,
// reloaded on SIGHUP), read into locked memory, parsed, and checked once against the key-check
// values recorded in mcp.key_check before any value is encrypted or decrypted with it.
#include "core/errors.hpp"
#include "core/keyring.hpp"
#include "core/secure_buffer.hpp"
#include "pg/boundary.hpp"
#include "pg/keyring_source.hpp"
#include "pg/settings.hpp"
#include "pg/spi_util.hpp"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <unistd.h>

extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "port.h"
#include "storage/proc.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/syscache.h"
}
#include "pg/compat.hpp"

namespace mcp_platform {

namespace {

// Set through MarkKeyringStale by the key settings' assign hooks, which run whenever the
// settings are applied (start-up and every SIGHUP, even when the text is unchanged: a key file
// may have changed under the same name).
bool g_keyring_stale = true;
std::unique_ptr<Keyring> g_keyring;
// The key check recorded new versions (or could not, read-only): check again once in a
// later transaction until mcp.key_check holds them, so a rolled-back recording is not trusted.
bool g_check_pending = false;
LocalTransactionId g_checked_lxid = InvalidLocalTransactionId;

bool IsSet(const char* setting) { return setting != nullptr && setting[0] != '\0'; }

SecureBuffer RunKeyCommand(const char* command) {
    FILE* pipe = PgGuard([&]() { return OpenPipeStream(command, "r"); });
    if (pipe == nullptr)
        throw SqlError(sqlstate::kNoKey,
                       std::string("could not run mcp_platform.key_command: ") + strerror(errno));
    // read(2) on the descriptor, not stdio, so no copy of the keyring stays in a FILE buffer.
    SecureBuffer buffer(4096);
    size_t used = 0;
    bool read_failed = false;
    for (;;) {
        if (used == buffer.size()) {
            if (buffer.size() >= (1u << 20)) {
                read_failed = true;
                break;
            }
            buffer.Resize(buffer.size() * 2);
        }
        ssize_t n = read(fileno(pipe), buffer.data() + used, buffer.size() - used);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            read_failed = true;
            break;
        }
        if (n == 0) break;
        used += static_cast<size_t>(n);
    }
    int status = PgGuard([&]() { return ClosePipeStream(pipe); });
    if (status != 0) {
        const char* why =
            PgGuard([&]() { return static_cast<const char*>(wait_result_to_str(status)); });
        throw SqlError(
            sqlstate::kNoKey, std::string("mcp_platform.key_command failed: ") + why, {},
            "Run the command as the server's OS user and fix it; it must print the keyring "
            "(\"<version> <64 hex characters>\" per line) and exit with status 0.");
    }
    if (read_failed)
        throw SqlError(sqlstate::kNoKey, "could not read the output of mcp_platform.key_command");
    if (used == 0)
        throw SqlError(
            sqlstate::kNoKey, "mcp_platform.key_command printed nothing", {},
            "The command must print the keyring: \"<version> <64 hex characters>\" per line.");
    buffer.Resize(used);
    return buffer;
}

// The key-check function: mcp_internal.key_check from release 1.1 on, mcp._key_check in 1.0
// (the same function, moved), so one library serves a database on either release. Looked up
// by exact name and argument types in the catalog, without the schema USAGE check of a
// regprocedure lookup: the keyring is loaded by whichever role first needs a key, and no
// application role has USAGE on mcp_internal. InvalidOid when neither exists.
struct KeyCheckName {
    const char* schema;
    const char* name;
};
constexpr KeyCheckName kKeyCheckNames[] = {{"mcp_internal", "key_check"}, {"mcp", "_key_check"}};

Oid FindKeyCheckFunction() {
    const Oid arg_types[2] = {INT4ARRAYOID, TEXTARRAYOID};
    for (const KeyCheckName& candidate : kKeyCheckNames) {
        Oid fn = FindFunction(candidate.schema, candidate.name, 2, arg_types);
        if (OidIsValid(fn)) return fn;
    }
    return InvalidOid;
}

// Calls the key-check function (see sql/install/30_credentials.sql for its result codes)
// directly through fmgr: the extension's own loader needs no EXECUTE grant, so no role can
// call it to record fingerprints of its choosing. It is SECURITY DEFINER, so it reads and
// writes mcp.key_check as the extension owner whoever triggers the load.
int32 CheckKeysAgainstDatabase(const std::string& versions, const std::string& fingerprints) {
    const char* v = versions.c_str();
    const char* f = fingerprints.c_str();
    return PgGuard([&]() -> int32 {
        Oid fn = FindKeyCheckFunction();
        if (!OidIsValid(fn))
            ereport(ERROR,
                    (errcode(ERRCODE_UNDEFINED_FUNCTION),
                     errmsg("function mcp_internal.key_check(integer[], text[]) does not exist"),
                     errdetail("Neither mcp_internal.key_check (release 1.1) nor "
                               "mcp._key_check (release 1.0) is in this database."),
                     errhint("Install or update the mcp_platform extension in this database.")));
        Datum version_array = OidInputFunctionCall(F_ARRAY_IN, const_cast<char*>(v), INT4OID, -1);
        Datum fingerprint_array =
            OidInputFunctionCall(F_ARRAY_IN, const_cast<char*>(f), TEXTOID, -1);
        return DatumGetInt32(OidFunctionCall2(fn, version_array, fingerprint_array));
    });
}

void CheckKeys(Keyring& ring) {
    g_checked_lxid =
        MyProc != nullptr ? pg_compat::ProcLocalXid(MyProc) : InvalidLocalTransactionId;
    std::string versions = "{", fingerprints = "{";
    for (uint32_t v : ring.Versions()) {
        if (versions.size() > 1) {
            versions += ",";
            fingerprints += ",";
        }
        versions += std::to_string(v);
        fingerprints += ring.Get(v).fingerprint();  // hex only: safe in a literal
    }
    versions += "}";
    fingerprints += "}";
    int32 bad = CheckKeysAgainstDatabase(versions, fingerprints);
    g_check_pending = bad < 0;
    if (bad > 0)
        throw SqlError(
            sqlstate::kDecryptFailed,
            "key version " + std::to_string(bad) +
                " does not match the key recorded for this database",
            "The keyring's key " + std::to_string(bad) + " has fingerprint " +
                ring.Get(static_cast<uint32_t>(bad)).fingerprint() +
                "; mcp.key_check records another fingerprint for that version.",
            "mcp_platform.key_file or mcp_platform.key_command supplies a wrong or changed key: "
            "restore the original key for this version (add new versions, never change one).");
}

std::string SourceName() {
    if (IsSet(settings::key_file))
        return std::string("mcp_platform.key_file \"") + settings::key_file + "\"";
    return "mcp_platform.key_command";
}

}  // namespace

void MarkKeyringStale() { g_keyring_stale = true; }

Keyring& CurrentKeyring() {
    if (g_keyring && !g_keyring_stale) {
        if (g_check_pending && MyProc != nullptr &&
            pg_compat::ProcLocalXid(MyProc) != g_checked_lxid) {
            try {
                CheckKeys(*g_keyring);
            } catch (...) {
                g_keyring.reset();
                throw;
            }
        }
        return *g_keyring;
    }
    // Old keys are dropped (and wiped) first: a failed reload must not keep using them.
    g_keyring.reset();
    if (!LibraryPreloaded())
        throw SqlError(sqlstate::kNoKey, "mcp_platform is not preloaded, so its key settings are not used",
                       "The key settings are used only when mcp_platform is in "
                       "shared_preload_libraries or session_preload_libraries: otherwise a role "
                       "could read them with SHOW in a session that has not loaded the library.",
                       "Add mcp_platform to shared_preload_libraries in postgresql.conf and "
                       "restart the server.");
    if (!IsSet(settings::key_file) && !IsSet(settings::key_command))
        throw SqlError(sqlstate::kNoKey, "no encryption key is configured",
                       "Neither mcp_platform.key_file nor mcp_platform.key_command is set.",
                       "Set one of them in postgresql.conf (see README \"Credentials\") and reload "
                       "the configuration.");
    if (IsSet(settings::key_file) && IsSet(settings::key_command))
        throw SqlError(sqlstate::kNoKey,
                       "both mcp_platform.key_file and mcp_platform.key_command are set", {},
                       "Set only one key source and reload the configuration.");
    auto ring = std::make_unique<Keyring>();
    try {
        SecureBuffer text = IsSet(settings::key_file) ? ReadKeyFile(settings::key_file)
                                                      : RunKeyCommand(settings::key_command);
        *ring = Keyring::Parse(
            std::string_view(reinterpret_cast<const char*>(text.data()), text.size()));
        ring->SetActive(static_cast<uint32_t>(settings::active_key_version));
    } catch (const SqlError& e) {
        std::string message = e.what();
        if (message.rfind("invalid keyring line", 0) == 0 ||
            message.rfind("keyring contains", 0) == 0 ||
            message.rfind("active key version", 0) == 0)
            message = SourceName() + ": " + message;
        throw SqlError(e.sqlstate(), message, e.detail(), e.hint());
    }
    CheckKeys(*ring);
    g_keyring = std::move(ring);
    g_keyring_stale = false;
    return *g_keyring;
}

}  // namespace mcp_platform
