// The two hottest calls of the credential API, in C: mcp.get_credentials (every request that
// uses a credential) and mcp.set_api_key. They do exactly what their PL/pgSQL forms did (the
// other calls still are PL/pgSQL, sql/src/credentials.sql), with the same checks, SQLSTATEs,
// messages and audit row, but without what made those cost 1.3-1.8x the same work written as
// plain SQL (bench/README.md, "The API path against plain SQL"): per call, four to nine
// PL/pgSQL function calls, each helper with a SET clause paying a GUC save and restore, and
// the instance looked up twice. Here: the search_path pinned once, one prepared statement
// (cached for the life of the backend) for the tenant's instance with its service and its
// credentials row, and for set_api_key the three writes the plain SQL does.
//
// Both are SECURITY DEFINER (declared so in SQL; no SET clause): their statements run with the
// owner's rights, under a pinned search_path, with every name, operator and cast
// schema-qualified. They run through SPI, not below the executor, so the tables' row-level
// security, triggers, constraints and any planner hook (Citus) see ordinary statements.
//
// Plain-C bodies (MCP_PG_FUNCTION_C): no C++ object is alive while a Postgres error can be
// raised. The crypto runs in C++ through InvokeCpp (SealField, OpenField), which raises its
// errors only after its own objects are gone.
#include "core/envelope.hpp"
#include "core/errors.hpp"
#include "pg/boundary.hpp"
#include "pg/crypto.hpp"
#include "pg/spi_util.hpp"
#include "pg/tenant.hpp"

#include <openssl/crypto.h>

#include <string>

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

namespace mp = mcp_platform;

namespace {

// The tenant's instance, its service and its credentials row (if any), in one statement; the
// row is the tenant's or there is none (42501). The columns, in order: the service type,
// whether the service is active, whether the instance is active (status 'active' and not past
// expires_at), whether a credentials row exists, then the credentials columns as
// mcp.get_credentials returns them.
const char* const kInstanceSql =
    "SELECT t.type::pg_catalog.text, t.is_active,"
    "       s.status OPERATOR(pg_catalog.=) 'active'"
    "         AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()),"
    "       c.instance_id IS NOT NULL,"
    "       c.api_key, c.client_id::pg_catalog.text, c.client_secret, c.access_token,"
    "       c.refresh_token, c.token_expires_at, c.token_scope, c.oauth_status::pg_catalog.text"
    "  FROM mcp.mcp_service_table AS s"
    "  JOIN mcp.mcp_table AS t ON t.mcp_service_id OPERATOR(pg_catalog.=) s.mcp_service_id"
    "  LEFT JOIN mcp.mcp_credentials AS c ON c.user_id OPERATOR(pg_catalog.=) s.user_id"
    "        AND c.instance_id OPERATOR(pg_catalog.=) s.instance_id"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";

// Just the service type, for set_api_key (it does not read the credentials row).
const char* const kInstanceTypeSql =
    "SELECT t.type::pg_catalog.text"
    "  FROM mcp.mcp_service_table AS s"
    "  JOIN mcp.mcp_table AS t ON t.mcp_service_id OPERATOR(pg_catalog.=) s.mcp_service_id"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";

// set_api_key's three writes, as its PL/pgSQL form ran them: the credentials row (an OAuth
// configuration from before the service became an API-key service is cleared), the instance's
// timestamp, the audit row (what mcp.log_token_operation writes for this call).
const char* const kUpsertApiKeySql =
    "INSERT INTO mcp.mcp_credentials AS c (user_id, instance_id, api_key, key_version)"
    " VALUES ($1, $2, $3, $4)"
    " ON CONFLICT ON CONSTRAINT mcp_credentials_instance_key DO UPDATE"
    "    SET api_key = excluded.api_key, key_version = excluded.key_version,"
    "        client_id = NULL, client_secret = NULL, access_token = NULL, refresh_token = NULL,"
    "        token_expires_at = NULL, token_scope = NULL, oauth_status = NULL,"
    "        oauth_completed_at = NULL, oauth_authorization_url = NULL, oauth_state = NULL,"
    "        oauth_state_expires_at = NULL, oauth_code_verifier = NULL,"
    "        refresh_claimed_until = NULL";
const char* const kTouchInstanceSql =
    "UPDATE mcp.mcp_service_table AS s SET credentials_updated_at = pg_catalog.now()"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";
const char* const kAuditSql =
    "INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method)"
    " VALUES ($2, $1, 'set_api_key', 'success', 'api_key')";

SPIPlanPtr instance_plan = nullptr;
SPIPlanPtr instance_type_plan = nullptr;
SPIPlanPtr upsert_api_key_plan = nullptr;
SPIPlanPtr touch_instance_plan = nullptr;
SPIPlanPtr audit_plan = nullptr;

// Columns of kInstanceSql (1-based, as SPI_getbinval counts).
enum InstanceColumn {
    kServiceType = 1,
    kServiceActive,
    kInstanceActive,
    kHasCredentials,
    kApiKey,
    kClientId,
    kClientSecret,
    kAccessToken,
    kRefreshToken,
    kTokenExpiresAt,
    kTokenScope,
    kOAuthStatus,
    kInstanceColumns = kOAuthStatus
};

const char* UuidText(Datum uuid) { return DatumGetCString(DirectFunctionCall1(uuid_out, uuid)); }

// The transaction's tenant as a uuid Datum; MC301 when none is set (CurrentTenant raises it
// too, for a value set at session level under tenant_scope = 'transaction').
Datum RequireTenant() {
    const char* tenant = mp::CurrentTenant();
    if (tenant == nullptr)
        ereport(ERROR,
                (errcode(mp::SqlStateCode(mp::sqlstate::kNoTenant)),
                 errmsg("no tenant set in this transaction"),
                 errhint("SELECT set_config('mcp.user_id', <user id>, true) first, in the same "
                         "transaction.")));
    // uuid_in reports a malformed value as 22P02, as mcp.current_user_id() does.
    return DirectFunctionCall1(uuid_in, CStringGetDatum(tenant));
}

[[noreturn]] void RaiseNotTenants(bool instance_isnull, Datum instance_id) {
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("instance %s does not belong to the current tenant",
                           instance_isnull ? "<NULL>" : UuidText(instance_id))));
    pg_unreachable();
}

// Runs one of the cached statements with ($1 user_id, $2 instance_id, ...).
void Execute(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types, Datum* values,
             int expected) {
    mp::ExecutePlan(mp::PrepareOnce(cache, sql, nargs, types), values, expected);
}

// The plaintext of one credential field, a palloc'd text (MC101/MC102/MC103 on failure).
Datum OpenField(Datum user_id, Datum instance_id, const char* field, Datum envelope_datum) {
    const pg_uuid_t* user = DatumGetUUIDP(user_id);
    const pg_uuid_t* instance = DatumGetUUIDP(instance_id);
    const bytea* envelope = DatumGetByteaPP(envelope_datum);
    return mp::InvokeCpp([&]() -> Datum {
        std::string context = mp::CredentialContext(user->data, instance->data, field);
        return PointerGetDatum(mp::OpenToText(mp::AsBytes(context), mp::VarBytes(envelope)));
    });
}

// The envelope of one credential field under the active key, a palloc'd bytea, and its key
// version. `wipe`: the secret is a copy of ours, wiped here whatever happens.
Datum SealField(Datum user_id, Datum instance_id, const char* field, text* secret, bool wipe,
                int32* key_version) {
    const pg_uuid_t* user = DatumGetUUIDP(user_id);
    const pg_uuid_t* instance = DatumGetUUIDP(instance_id);
    return mp::InvokeCpp([&]() -> Datum {
        mp::ScopedCleanse wipe_secret(wipe ? VARDATA_ANY(secret) : nullptr,
                                      wipe ? VARSIZE_ANY_EXHDR(secret) : 0);
        std::string context = mp::CredentialContext(user->data, instance->data, field);
        bytea* sealed = mp::SealToBytea(mp::AsBytes(context), mp::VarBytes(secret));
        *key_version = static_cast<int32>(mp::EnvelopeKeyVersion(mp::VarBytes(sealed)));
        return PointerGetDatum(sealed);
    });
}

void WipeText(Datum value) {
    text* t = DatumGetTextPP(value);
    OPENSSL_cleanse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

}  // namespace

// mcp.get_credentials(instance_id uuid) → TABLE (auth_type, api_key, client_id, client_secret,
// access_token, refresh_token, token_expires_at, token_scope, oauth_status): the decrypted
// credentials of one of the tenant's active instances; no row when it has none. MC301 no
// tenant, 42501 not the tenant's instance, MC003 service inactive, MC004 instance not active.
MCP_PG_FUNCTION_C(mcp_get_credentials) {
    Datum user_id = RequireTenant();
    bool instance_isnull = PG_ARGISNULL(0);
    Datum instance_id = instance_isnull ? (Datum)0 : PG_GETARG_DATUM(0);
    if (instance_isnull) RaiseNotTenants(true, instance_id);

    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    // The caller's expected row type is this function's (a FunctionScan or a ProjectSet of a
    // composite); taking it spares building the row type from the catalog on every call.
    InitMaterializedSRF(fcinfo, rsinfo != nullptr && rsinfo->expectedDesc != nullptr
                                    ? MAT_SRF_USE_EXPECTED_DESC
                                    : 0);

    int nest_level = mp::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[2] = {UUIDOID, UUIDOID};
    Datum args[2] = {user_id, instance_id};
    Execute(&instance_plan, kInstanceSql, 2, types, args, SPI_OK_SELECT);
    if (SPI_processed == 0) RaiseNotTenants(false, instance_id);

    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull = false;
    if (!DatumGetBool(SPI_getbinval(row, desc, kServiceActive, &isnull)))
        ereport(ERROR, (errcode(mp::SqlStateCode(mp::sqlstate::kServiceInactive)),
                        errmsg("the service of instance %s is inactive", UuidText(instance_id))));
    if (!DatumGetBool(SPI_getbinval(row, desc, kInstanceActive, &isnull)))
        ereport(ERROR,
                (errcode(mp::SqlStateCode(mp::sqlstate::kInstanceNotActive)),
                 errmsg("instance %s is not active", UuidText(instance_id)),
                 errhint("An inactive or expired instance hands out no credentials; renew or "
                         "reactivate it first.")));

    if (DatumGetBool(SPI_getbinval(row, desc, kHasCredentials, &isnull))) {
        // The result columns and where each comes from; the secret ones are opened here.
        static const struct {
            InstanceColumn column;
            const char* secret_field;  // nullptr: not a secret
        } kResult[] = {{kServiceType, nullptr},    {kApiKey, "api_key"},
                       {kClientId, nullptr},       {kClientSecret, "client_secret"},
                       {kAccessToken, "access_token"}, {kRefreshToken, "refresh_token"},
                       {kTokenExpiresAt, nullptr}, {kTokenScope, nullptr},
                       {kOAuthStatus, nullptr}};
        constexpr int kResultColumns = sizeof kResult / sizeof kResult[0];
        Datum values[kResultColumns];
        bool nulls[kResultColumns];
        bool opened[kResultColumns];
        for (int i = 0; i < kResultColumns; i++) {
            values[i] = SPI_getbinval(row, desc, kResult[i].column, &nulls[i]);
            opened[i] = !nulls[i] && kResult[i].secret_field != nullptr;
            if (opened[i])
                values[i] = OpenField(user_id, instance_id, kResult[i].secret_field, values[i]);
        }
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
        // The row now lives in the tuplestore; our copies of the plaintexts are wiped.
        for (int i = 0; i < kResultColumns; i++)
            if (opened[i]) WipeText(values[i]);
    }
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mp::RestoreSearchPath(nest_level);
    return (Datum)0;
}

// mcp.set_api_key(instance_id uuid, api_key text): stores the API key of one of the tenant's
// instances of an api_key service, sealed here before any row holds it; audited. MC301 no
// tenant, 42501 not the tenant's, MC202 not an api_key service, 22023 empty, 22001 over 500
// characters (the field named in DETAIL; the key itself never in a message).
MCP_PG_FUNCTION_C(mcp_set_api_key) {
    constexpr int kMaxChars = 500;
    Datum user_id = RequireTenant();
    bool instance_isnull = PG_ARGISNULL(0);
    Datum instance_id = instance_isnull ? (Datum)0 : PG_GETARG_DATUM(0);
    if (instance_isnull) RaiseNotTenants(true, instance_id);

    int nest_level = mp::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[4] = {UUIDOID, UUIDOID, BYTEAOID, INT4OID};
    Datum args[4] = {user_id, instance_id, (Datum)0, (Datum)0};
    Execute(&instance_type_plan, kInstanceTypeSql, 2, types, args, SPI_OK_SELECT);
    if (SPI_processed == 0) RaiseNotTenants(false, instance_id);
    char* service_type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    if (service_type == nullptr || strcmp(service_type, "api_key") != 0)
        ereport(ERROR, (errcode(mp::SqlStateCode(mp::sqlstate::kCredentialTypeMismatch)),
                        errmsg("instance %s belongs to a service of type %s, not api_key",
                               UuidText(instance_id),
                               service_type == nullptr ? "<NULL>" : service_type)));

    text* secret = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
    if (secret == nullptr || VARSIZE_ANY_EXHDR(secret) == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("api_key must not be empty")));
    // A detoasted copy of the key is ours, and wiped; the caller's datum is not.
    bool copied = reinterpret_cast<Pointer>(secret) != DatumGetPointer(PG_GETARG_DATUM(1));
    // At most 4 bytes a character: a short key needs no counting.
    if (VARSIZE_ANY_EXHDR(secret) > kMaxChars &&
        pg_mbstrlen_with_len(VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret)) > kMaxChars) {
        if (copied) OPENSSL_cleanse(VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret));
        ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                        errmsg("api_key is longer than %d characters", kMaxChars),
                        errdetail("field=api_key max_chars=%d", kMaxChars)));
    }
    int32 key_version = 0;
    args[2] = SealField(user_id, instance_id, "api_key", secret, copied, &key_version);
    args[3] = Int32GetDatum(key_version);

    Execute(&upsert_api_key_plan, kUpsertApiKeySql, 4, types, args, SPI_OK_INSERT);
    Execute(&touch_instance_plan, kTouchInstanceSql, 2, types, args, SPI_OK_UPDATE);
    Execute(&audit_plan, kAuditSql, 2, types, args, SPI_OK_INSERT);
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mp::RestoreSearchPath(nest_level);
    PG_RETURN_VOID();
}
