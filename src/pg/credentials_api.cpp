// The two hottest calls of the credential API, in C: mcp.get_credentials (every request that
// uses a credential) and mcp.set_api_key. They do what their PL/pgSQL forms did (the other
// calls still are PL/pgSQL, sql/src/credentials.sql), with the same checks, SQLSTATEs,
// messages and audit row, but without what made those cost 1.3-2.2x the same work written as
// plain SQL (bench/README.md, "The API path against plain SQL"): per call, several nested
// PL/pgSQL calls, each helper with a SET clause paying a GUC save and restore and a
// search-path recomputation, the instance looked up twice, and executor start-up of every
// statement.
//
// Both are SECURITY DEFINER (declared so in SQL, without a SET clause).
//  * set_api_key runs its statements through SPI, under a search_path it pins itself, with
//    every name, operator and cast schema-qualified: the tables' triggers, constraints and
//    any planner hook (Citus) see ordinary statements. Each plan is cached for the backend.
//  * get_credentials reads its three rows by unique index below the executor (see
//    GetCredentialsDirect), and through one statement when Citus is loaded.
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
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

namespace mp = mcp_platform;

namespace {

// The tenant's instance and its credentials row (if any), in one statement; the row is the
// tenant's or there is none (42501). The columns, in order: two that kServiceSql fills (the
// service type, whether the service is active), whether the instance is active (status
// 'active' and not past expires_at), whether a credentials row exists, the credentials
// columns as mcp.get_credentials returns them, then the instance's service. The service is read
// by a statement of its own: inside a call Citus delegated to the tenant's worker, a statement
// may not join a tenant table with a reference table (the catalog).
const char* const kInstanceSql =
    "SELECT NULL::pg_catalog.text, NULL::pg_catalog.bool,"
    "       s.status OPERATOR(pg_catalog.=) 'active'"
    "         AND (s.expires_at IS NULL OR s.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()),"
    "       c.instance_id IS NOT NULL,"
    "       c.api_key, c.client_id::pg_catalog.text, c.client_secret, c.access_token,"
    "       c.refresh_token, c.token_expires_at, c.token_scope, c.oauth_status::pg_catalog.text,"
    "       s.mcp_service_id"
    "  FROM mcp.mcp_service_table AS s"
    "  LEFT JOIN mcp.mcp_credentials AS c ON c.user_id OPERATOR(pg_catalog.=) s.user_id"
    "        AND c.instance_id OPERATOR(pg_catalog.=) s.instance_id"
    // a revoked credential hands out nothing (no row, as before 1.1 when revoking deleted it)
    "        AND c.refresh_state OPERATOR(pg_catalog.<>) 'revoked'"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";

// A service's type and whether it is active.
const char* const kServiceSql =
    "SELECT t.type::pg_catalog.text, t.is_active FROM mcp.mcp_table AS t"
    " WHERE t.mcp_service_id OPERATOR(pg_catalog.=) $1";

// The service type of the tenant's instance, for set_api_key (it does not read the
// credentials row): one statement on one node, two with Citus (the instance's service, then
// kServiceSql; see kInstanceSql).
const char* const kInstanceTypeSql =
    "SELECT t.type::pg_catalog.text"
    "  FROM mcp.mcp_service_table AS s"
    "  JOIN mcp.mcp_table AS t ON t.mcp_service_id OPERATOR(pg_catalog.=) s.mcp_service_id"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";
const char* const kInstanceServiceSql =
    "SELECT s.mcp_service_id FROM mcp.mcp_service_table AS s"
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
    "        refresh_claimed_until = NULL,"
    // a new key ends a revocation; an API key has no refresh lifecycle
    "        refresh_state = 'ok', refresh_lease = NULL, refresh_due_at = NULL,"
    "        tokens_stored_at = NULL, refresh_failures = 0, failure_days = 0,"
    "        next_attempt_at = NULL";
const char* const kTouchInstanceSql =
    "UPDATE mcp.mcp_service_table AS s SET credentials_updated_at = pg_catalog.now()"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1 AND s.instance_id OPERATOR(pg_catalog.=) $2";
const char* const kAuditSql =
    "INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method)"
    " VALUES ($2, $1, 'set_api_key', 'success', 'api_key')";

SPIPlanPtr instance_plan = nullptr;
SPIPlanPtr instance_type_plan = nullptr;
SPIPlanPtr instance_service_plan = nullptr;
SPIPlanPtr service_plan = nullptr;
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
    kInstanceColumns = kOAuthStatus,
    kServiceId  // kInstanceSql only
};

const char* UuidText(Datum uuid) { return DatumGetCString(DirectFunctionCall1(uuid_out, uuid)); }

[[noreturn]] void RaiseNotTenants(bool instance_isnull, Datum instance_id) {
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("instance %s does not belong to the current tenant",
                           instance_isnull ? "<NULL>" : UuidText(instance_id))));
    pg_unreachable();
}

// Runs one of the cached statements with ($1 user_id, $2 instance_id, ...). With Citus, planned
// for these values each time instead: Citus routes a statement joining a distributed table with
// a reference table only when it sees the tenant's value at planning time (a cached generic
// plan fails with "could not create distributed plan").
void Execute(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types, Datum* values,
             int expected) {
    if (mp::CitusLoaded()) {
        int rc = SPI_execute_with_args(sql, nargs, types, values, nullptr, false, 0);
        if (rc != expected) elog(ERROR, "SPI_execute_with_args failed: %s", SPI_result_code_string(rc));
        return;
    }
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

void WipeText(Datum value) {
    text* t = DatumGetTextPP(value);
    OPENSSL_cleanse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

// The result columns of mcp.get_credentials and where each comes from; the secret ones are
// opened here.
struct ResultColumn {
    InstanceColumn column;
    const char* secret_field;  // nullptr: not a secret
};
constexpr ResultColumn kResult[] = {
    {kServiceType, nullptr},        {kApiKey, "api_key"},
    {kClientId, nullptr},           {kClientSecret, "client_secret"},
    {kAccessToken, "access_token"}, {kRefreshToken, "refresh_token"},
    {kTokenExpiresAt, nullptr},     {kTokenScope, nullptr},
    {kOAuthStatus, nullptr}};
constexpr int kResultColumns = sizeof kResult / sizeof kResult[0];

// Opens the secret columns of one credentials row (values[i] of kInstanceColumn numbering, 1-
// based as `get`), stores the row in the SRF's tuplestore and wipes our plaintext copies.
template <typename Get>
void PutCredentialsRow(ReturnSetInfo* rsinfo, Datum user_id, Datum instance_id, Get get) {
    Datum values[kResultColumns];
    bool nulls[kResultColumns];
    bool opened[kResultColumns];
    for (int i = 0; i < kResultColumns; i++) {
        values[i] = get(kResult[i].column, &nulls[i]);
        opened[i] = !nulls[i] && kResult[i].secret_field != nullptr;
        if (opened[i]) values[i] = OpenField(user_id, instance_id, kResult[i].secret_field, values[i]);
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    // The row now lives in the tuplestore; our copies of the plaintexts are wiped.
    for (int i = 0; i < kResultColumns; i++)
        if (opened[i]) WipeText(values[i]);
}

[[noreturn]] void RaiseServiceInactive(Datum instance_id) {
    ereport(ERROR, (errcode(mp::SqlStateCode(mp::sqlstate::kServiceInactive)),
                    errmsg("the service of instance %s is inactive", UuidText(instance_id))));
    pg_unreachable();
}

[[noreturn]] void RaiseInstanceNotActive(Datum instance_id) {
    ereport(ERROR, (errcode(mp::SqlStateCode(mp::sqlstate::kInstanceNotActive)),
                    errmsg("instance %s is not active", UuidText(instance_id)),
                    errhint("An inactive or expired instance hands out no credentials; renew or "
                            "reactivate it first.")));
    pg_unreachable();
}

// ---- get_credentials through SPI (with Citus) ------------------------------------------------

// The statement path: kInstanceSql through SPI. Used when Citus is loaded (its planner routes
// the statement to the tenant's shards, which a read below the executor would not find).
void GetCredentialsByStatement(ReturnSetInfo* rsinfo, Datum user_id, Datum instance_id) {
    int nest_level = mp::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[2] = {UUIDOID, UUIDOID};
    Datum args[2] = {user_id, instance_id};
    Execute(&instance_plan, kInstanceSql, 2, types, args, SPI_OK_SELECT);
    if (SPI_processed == 0) RaiseNotTenants(false, instance_id);
    SPITupleTable* instance = SPI_tuptable;
    HeapTuple row = instance->vals[0];
    TupleDesc desc = instance->tupdesc;
    bool isnull = false;
    Datum service_id = SPI_getbinval(row, desc, kServiceId, &isnull);
    Execute(&service_plan, kServiceSql, 1, types, &service_id, SPI_OK_SELECT);
    if (SPI_processed == 0) RaiseServiceInactive(instance_id);  // (a foreign key prevents it)
    HeapTuple service = SPI_tuptable->vals[0];
    TupleDesc service_desc = SPI_tuptable->tupdesc;
    if (!DatumGetBool(SPI_getbinval(service, service_desc, 2, &isnull)))
        RaiseServiceInactive(instance_id);
    if (!DatumGetBool(SPI_getbinval(row, desc, kInstanceActive, &isnull)))
        RaiseInstanceNotActive(instance_id);
    if (DatumGetBool(SPI_getbinval(row, desc, kHasCredentials, &isnull)))
        PutCredentialsRow(rsinfo, user_id, instance_id, [&](int column, bool* null) {
            if (column == kServiceType) return SPI_getbinval(service, service_desc, 1, null);
            return SPI_getbinval(row, desc, column, null);
        });
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mp::RestoreSearchPath(nest_level);
}

// ---- get_credentials below the executor (one node) -------------------------------------------
// The same reads as kInstanceSql, by unique index, without planning or executor start-up (a
// profile put four fifths of the call in that statement's executor start-up and run;
// bench/README.md). Nothing is resolved through a search_path: the relations are looked up by
// name in schema mcp and read by OID, so no search_path needs pinning either. Locks and
// snapshot are the statement's: AccessShareLock, and after a command counter increment a fresh
// snapshot under READ COMMITTED (the transaction's under REPEATABLE READ), as SPI takes for a
// VOLATILE function. Row-level security does not apply below the executor; the function's
// owner (the extension's, a superuser) bypasses it anyway, and every read names the tenant.

// Relations and column numbers, looked up once per backend, and again after any relcache
// invalidation (DDL: a dropped and re-created extension, a rebuilt index) or when called as
// another function (a re-created extension).
struct ReadCatalog {
    Oid function = InvalidOid;
    Oid instances = InvalidOid, instances_pkey = InvalidOid;
    Oid services = InvalidOid, services_pkey = InvalidOid;
    Oid credentials = InvalidOid, credentials_key = InvalidOid;
    AttrNumber instance_service = 0, instance_status = 0, instance_expires_at = 0;
    AttrNumber service_type = 0, service_is_active = 0;
    AttrNumber credential_refresh_state = 0;
    AttrNumber credential_column[kInstanceColumns + 1] = {0};  // by InstanceColumn
};
ReadCatalog read_catalog;
bool read_catalog_callback = false;

void ForgetReadCatalog(Datum, Oid) { read_catalog.function = InvalidOid; }

Oid McpRelation(Oid ns, const char* name) {
    Oid relid = get_relname_relid(name, ns);
    if (!OidIsValid(relid)) elog(ERROR, "relation mcp.%s does not exist", name);
    return relid;
}

AttrNumber Column(Oid relid, const char* name) {
    AttrNumber attnum = get_attnum(relid, name);
    if (attnum == InvalidAttrNumber)
        elog(ERROR, "column \"%s\" of relation %s does not exist", name, get_rel_name(relid));
    return attnum;
}

const ReadCatalog& ReadCatalogFor(Oid function) {
    if (read_catalog.function != function) {
        if (!read_catalog_callback) {
            CacheRegisterRelcacheCallback(ForgetReadCatalog, (Datum)0);
            read_catalog_callback = true;
        }
        Oid ns = get_namespace_oid("mcp", false);
        ReadCatalog c;
        c.instances = McpRelation(ns, "mcp_service_table");
        c.instances_pkey = McpRelation(ns, "mcp_service_table_pkey");  // (user_id, instance_id)
        c.services = McpRelation(ns, "mcp_table");
        c.services_pkey = McpRelation(ns, "mcp_table_pkey");  // (mcp_service_id)
        c.credentials = McpRelation(ns, "mcp_credentials");
        c.credentials_key = McpRelation(ns, "mcp_credentials_instance_key");  // (user_id, instance_id)
        c.instance_service = Column(c.instances, "mcp_service_id");
        c.instance_status = Column(c.instances, "status");
        c.instance_expires_at = Column(c.instances, "expires_at");
        c.service_type = Column(c.services, "type");
        c.service_is_active = Column(c.services, "is_active");
        c.credential_refresh_state = Column(c.credentials, "refresh_state");
        static const struct {
            InstanceColumn column;
            const char* name;
        } kCredentialColumns[] = {{kApiKey, "api_key"},
                                  {kClientId, "client_id"},
                                  {kClientSecret, "client_secret"},
                                  {kAccessToken, "access_token"},
                                  {kRefreshToken, "refresh_token"},
                                  {kTokenExpiresAt, "token_expires_at"},
                                  {kTokenScope, "token_scope"},
                                  {kOAuthStatus, "oauth_status"}};
        for (const auto& column : kCredentialColumns)
            c.credential_column[column.column] = Column(c.credentials, column.name);
        c.function = function;
        read_catalog = c;
    }
    return read_catalog;
}

// The row of `rel` visible to `snapshot` whose unique index `index` on nkeys uuid columns
// holds `keys`, into `slot`.
bool FetchUnique(Relation rel, Relation index, Snapshot snapshot, const Datum* keys, int nkeys,
                 TupleTableSlot* slot) {
    ScanKeyData scan_keys[2];
    for (int i = 0; i < nkeys; i++)
        ScanKeyInit(&scan_keys[i], i + 1, BTEqualStrategyNumber, F_UUID_EQ, keys[i]);
    IndexScanDesc scan = mp::pg_compat::IndexBeginScan(rel, index, snapshot, nkeys, 0);
    index_rescan(scan, scan_keys, nkeys, nullptr, 0);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    index_endscan(scan);
    return found;
}

bool TextEquals(Datum value, const char* s) {
    struct varlena* v = PG_DETOAST_DATUM_PACKED(value);
    size_t n = strlen(s);
    return VARSIZE_ANY_EXHDR(v) == n && memcmp(VARDATA_ANY(v), s, n) == 0;
}

void GetCredentialsDirect(Oid function, ReturnSetInfo* rsinfo, Datum user_id,
                          Datum instance_id) {
    const ReadCatalog& c = ReadCatalogFor(function);
    CommandCounterIncrement();
    Snapshot snapshot = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot()
                                                                     : GetLatestSnapshot());
    bool isnull = false;

    // The tenant's instance (42501 when there is none) and whether it is active.
    Relation instances = table_open(c.instances, AccessShareLock);
    Relation instances_pkey = index_open(c.instances_pkey, AccessShareLock);
    TupleTableSlot* slot = table_slot_create(instances, nullptr);
    Datum keys[2] = {user_id, instance_id};
    if (!FetchUnique(instances, instances_pkey, snapshot, keys, 2, slot))
        RaiseNotTenants(false, instance_id);
    pg_uuid_t service_id = *DatumGetUUIDP(slot_getattr(slot, c.instance_service, &isnull));
    bool instance_active = TextEquals(slot_getattr(slot, c.instance_status, &isnull), "active");
    Datum expires_at = slot_getattr(slot, c.instance_expires_at, &isnull);
    if (!isnull && DatumGetTimestampTz(expires_at) <= GetCurrentTransactionStartTimestamp())
        instance_active = false;  // past expires_at (now() is the transaction's start)
    ExecDropSingleTupleTableSlot(slot);
    index_close(instances_pkey, NoLock);
    table_close(instances, NoLock);

    // Its service: the type, and whether it is active (MC003 first, then MC004, as before).
    Relation services = table_open(c.services, AccessShareLock);
    Relation services_pkey = index_open(c.services_pkey, AccessShareLock);
    slot = table_slot_create(services, nullptr);
    keys[0] = UUIDPGetDatum(&service_id);
    if (!FetchUnique(services, services_pkey, snapshot, keys, 1, slot))
        RaiseNotTenants(false, instance_id);  // cannot happen: a foreign key
    if (!DatumGetBool(slot_getattr(slot, c.service_is_active, &isnull)))
        RaiseServiceInactive(instance_id);
    if (!instance_active) RaiseInstanceNotActive(instance_id);
    Datum service_type = datumCopy(slot_getattr(slot, c.service_type, &isnull), false, -1);
    ExecDropSingleTupleTableSlot(slot);
    index_close(services_pkey, NoLock);
    table_close(services, NoLock);

    // Its credentials row, if any and not revoked (a revoked one hands out nothing: no row, as
    // before 1.1 when revoking deleted it).
    Relation credentials = table_open(c.credentials, AccessShareLock);
    Relation credentials_key = index_open(c.credentials_key, AccessShareLock);
    slot = table_slot_create(credentials, nullptr);
    keys[0] = user_id;
    keys[1] = instance_id;
    if (FetchUnique(credentials, credentials_key, snapshot, keys, 2, slot) &&
        !TextEquals(slot_getattr(slot, c.credential_refresh_state, &isnull), "revoked"))
        PutCredentialsRow(rsinfo, user_id, instance_id, [&](int column, bool* null) {
            if (column == kServiceType) {
                *null = false;
                return service_type;
            }
            return slot_getattr(slot, c.credential_column[column], null);
        });
    ExecDropSingleTupleTableSlot(slot);
    index_close(credentials_key, NoLock);
    table_close(credentials, NoLock);
    UnregisterSnapshot(snapshot);
}


}  // namespace

// mcp.get_credentials(instance_id uuid, tenant uuid) → TABLE (auth_type, api_key, client_id, client_secret,
// access_token, refresh_token, token_expires_at, token_scope, oauth_status): the decrypted
// credentials of one of the tenant's active instances; no row when it has none. MC301 no
// tenant, MC302 another tenant's argument, 42501 not the tenant's instance, MC003 service inactive, MC004 instance not active.
MCP_PG_FUNCTION_C(mcp_get_credentials) {
    Datum user_id = mp::RequireTenant(fcinfo, 1);
    bool instance_isnull = PG_ARGISNULL(0);
    Datum instance_id = instance_isnull ? (Datum)0 : PG_GETARG_DATUM(0);
    if (instance_isnull) RaiseNotTenants(true, instance_id);

    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    // The caller's expected row type is this function's (a FunctionScan or a ProjectSet of a
    // composite); taking it spares building the row type from the catalog on every call.
    InitMaterializedSRF(fcinfo, rsinfo != nullptr && rsinfo->expectedDesc != nullptr
                                    ? MAT_SRF_USE_EXPECTED_DESC
                                    : 0);
    // With Citus its tables are read through a statement (test/sql/credential_reads.sql runs
    // both paths on one node)
    if (mp::CitusLoaded())
        GetCredentialsByStatement(rsinfo, user_id, instance_id);
    else
        GetCredentialsDirect(fcinfo->flinfo->fn_oid, rsinfo, user_id, instance_id);
    return (Datum)0;
}

// mcp.set_api_key(instance_id uuid, api_key text, tenant uuid): stores the API key of one of the tenant's
// instances of an api_key service, sealed here before any row holds it; audited. MC301 no
// tenant, 42501 not the tenant's, MC202 not an api_key service, 22023 empty, 22001 over 500
// characters (the field named in DETAIL; the key itself never in a message).
MCP_PG_FUNCTION_C(mcp_set_api_key) {
    constexpr int kMaxChars = 500;
    Datum user_id = mp::RequireTenant(fcinfo, 2);
    bool instance_isnull = PG_ARGISNULL(0);
    Datum instance_id = instance_isnull ? (Datum)0 : PG_GETARG_DATUM(0);
    if (instance_isnull) RaiseNotTenants(true, instance_id);

    int nest_level = mp::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[4] = {UUIDOID, UUIDOID, BYTEAOID, INT4OID};
    Datum args[4] = {user_id, instance_id, (Datum)0, (Datum)0};
    if (mp::CitusLoaded()) {
        Execute(&instance_service_plan, kInstanceServiceSql, 2, types, args, SPI_OK_SELECT);
        if (SPI_processed == 0) RaiseNotTenants(false, instance_id);
        bool isnull = false;
        Datum service_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        Execute(&service_plan, kServiceSql, 1, types, &service_id, SPI_OK_SELECT);
    } else {
        Execute(&instance_type_plan, kInstanceTypeSql, 2, types, args, SPI_OK_SELECT);
        if (SPI_processed == 0) RaiseNotTenants(false, instance_id);
    }
    char* service_type = SPI_processed == 0
                             ? nullptr
                             : SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
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
    args[2] = mp::SealCredentialField(DatumGetUUIDP(user_id), DatumGetUUIDP(instance_id), "api_key",
                                      secret, copied, &key_version);
    args[3] = Int32GetDatum(key_version);

    Execute(&upsert_api_key_plan, kUpsertApiKeySql, 4, types, args, SPI_OK_INSERT);
    Execute(&touch_instance_plan, kTouchInstanceSql, 2, types, args, SPI_OK_UPDATE);
    Execute(&audit_plan, kAuditSql, 2, types, args, SPI_OK_INSERT);
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mp::RestoreSearchPath(nest_level);
    PG_RETURN_VOID();
}
