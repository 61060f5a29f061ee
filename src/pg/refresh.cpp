// The refresh lifecycle in C: its rules adapted to SQL (sql/src/refresh.sql calls these: the
// lifecycle clock, when stored tokens become due, what a failure does to a credential), and
// the settle every refresh worker runs once per credential, mcp.complete_refresh. The rules
// themselves are src/core/refresh_policy.cpp; these are plain C bodies around them (the core
// functions are noexcept and allocate nothing).
#include "core/envelope.hpp"
#include "core/errors.hpp"
#include "core/refresh_policy.hpp"
#include "core/secure_buffer.hpp"
#include "pg/audit_writer.hpp"
#include "pg/boundary.hpp"
#include "pg/crypto.hpp"
#include "pg/settings.hpp"
#include "pg/spi_util.hpp"

#include <openssl/crypto.h>

#include <string>

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}
#include "pg/compat.hpp"

namespace {

using mcp_platform::Micros;
using mcp_platform::kMicrosPerSecond;
namespace settings = mcp_platform::settings;

mcp_platform::RefreshSettings CurrentSettings() {
    mcp_platform::RefreshSettings s;
    s.margin = static_cast<Micros>(settings::refresh_margin) * kMicrosPerSecond;
    s.idle_interval = static_cast<Micros>(settings::refresh_idle_interval) * kMicrosPerSecond;
    s.backoff_base = static_cast<Micros>(settings::refresh_backoff_base) * kMicrosPerSecond;
    s.backoff_max = static_cast<Micros>(settings::refresh_backoff_max) * kMicrosPerSecond;
    s.max_failure_days = settings::refresh_max_failure_days;
    return s;
}

// A timestamptz from the core's arithmetic: the core saturates, Postgres has a finite range.
TimestampTz ToTimestamp(Micros t) {
    if (t < MIN_TIMESTAMP) return MIN_TIMESTAMP;
    if (t >= END_TIMESTAMP) return END_TIMESTAMP - 1;
    return t;
}

// The lifecycle's "now": the transaction's start time, shifted by
// mcp_platform.refresh_clock_offset (0 except in tests).
TimestampTz RefreshClock() {
    Micros now = GetCurrentTransactionStartTimestamp();
    return ToTimestamp(now + static_cast<Micros>(settings::refresh_clock_offset) * kMicrosPerSecond);
}

// ---- complete_refresh ----------------------------------------------------------------------
// What its PL/pgSQL form did, statement for statement (the same reads and writes, checks,
// SQLSTATEs, audit row and event), without what a PL/pgSQL body costs on the hot path of every
// worker: the function-level SET search_path (a GUC save and restore and a search-path
// recomputation per call), the interpreter, and helper calls through fmgr. The statements run
// through SPI with plans kept for the backend (planned per call under Citus, which routes them
// by the tenant's value), under a search_path pinned here, every name, operator and cast
// schema-qualified.

// The leased row, read without a lock: on Citus a FOR UPDATE must stay within one shard, and
// the lease is not the distribution key.
const char* const kLeasedRowSql =
    "SELECT c.user_id, c.credential_id, c.instance_id, c.refresh_state::pg_catalog.text"
    "  FROM mcp.mcp_credentials AS c"
    " WHERE c.refresh_lease OPERATOR(pg_catalog.=) $1";

// The settle's UPDATE, the same text in both forms below.
#define MCP_SETTLE_UPDATE                                                                   \
    "UPDATE mcp.mcp_credentials AS c"                                                       \
    "   SET access_token = $4,"                                                             \
    "       refresh_token = COALESCE($5, c.refresh_token),"                                 \
    "       token_expires_at = $6,"                                                         \
    "       token_scope = COALESCE($7, c.token_scope),"                                     \
    "       oauth_status = 'completed',"                                                    \
    "       oauth_completed_at = COALESCE(c.oauth_completed_at, $8),"                       \
    "       refresh_state = 'ok', refresh_lease = NULL, refresh_claimed_until = NULL,"      \
    "       refresh_failures = 0, failure_days = 0, next_attempt_at = NULL,"                \
    "       last_success_at = $9, tokens_stored_at = $9, refresh_due_at = $10,"             \
    "       key_version = mcp_internal.common_key_version(NULL, c.client_secret, $4,"       \
    "                         COALESCE($5, c.refresh_token), c.oauth_code_verifier)"        \
    " WHERE c.user_id OPERATOR(pg_catalog.=) $1 AND c.credential_id OPERATOR(pg_catalog.=) $2" \
    "   AND c.refresh_lease OPERATOR(pg_catalog.=) $3"

// The settle: the row updated by its key with the lease checked again (on the row's latest
// version if another transaction changed it meanwhile: a takeover, the tenant's new tokens, a
// revocation), and the audit row written, in one statement on the tenant's shard. A NULL
// refresh token ($5) or scope ($7) keeps the stored one. The instance's row is left alone: its
// credentials_updated_at and oauth_status record what the tenant set (a refresh renews the
// same grant; refresh_status.last_success_at shows it), and refreshing every credential every
// hour would otherwise rewrite the hot instance table.
//   $1 user_id, $2 credential_id, $3 lease, $4 sealed access token, $5 sealed refresh token,
//   $6 expires_at, $7 token_scope, $8 now(), $9 the lifecycle clock, $10 next due time,
//   $11 the audit row's metadata
const char* const kSettleSql =
    "WITH upd AS (" MCP_SETTLE_UPDATE
    "  RETURNING c.user_id, c.instance_id"
    "), logged AS ("
    "  INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata)"
    "  SELECT upd.instance_id, upd.user_id, 'refresh', 'success', 'oauth', $11 FROM upd"
    ")"
    "SELECT pg_catalog.count(*) FROM upd";

// The same UPDATE alone, where the audit row is written by WriteAuditRow (one node).
const char* const kSettleUpdateSql = MCP_SETTLE_UPDATE;

// The audit row as a statement, where WriteAuditRow does not apply.
//   $1 user_id, $2 instance_id, $3 metadata
const char* const kRefreshAuditSql =
    "INSERT INTO mcp.token_audit_log (instance_id, user_id, operation, status, method, metadata)"
    " VALUES ($2, $1, 'refresh', 'success', 'oauth', $3)";

const char* const kRecoveredEventSql =
    "SELECT mcp_internal.credential_event($1, $2, 'recovered')";

SPIPlanPtr leased_row_plan = nullptr;
SPIPlanPtr settle_plan = nullptr;
SPIPlanPtr settle_update_plan = nullptr;
SPIPlanPtr refresh_audit_plan = nullptr;
SPIPlanPtr recovered_event_plan = nullptr;

// The leased row below the executor (one node): the same read as kLeasedRowSql, by the lease
// index, without planning or executor start-up. Locks and snapshot are the statement's:
// AccessShareLock, and after a command counter increment a fresh snapshot under READ
// COMMITTED (the transaction's under REPEATABLE READ), as SPI takes for a VOLATILE function.
// Row-level security does not apply below the executor; the function's owner (the extension's,
// a superuser) bypasses it anyway. The relations and column numbers are looked up once per
// backend, and again after any relcache invalidation.
struct LeaseCatalog {
    bool valid = false;
    Oid credentials = InvalidOid, lease_index = InvalidOid;
    AttrNumber user_id = 0, credential_id = 0, instance_id = 0, refresh_state = 0;
};
LeaseCatalog lease_catalog;
bool lease_catalog_callback = false;

void ForgetLeaseCatalog(Datum, Oid) { lease_catalog.valid = false; }

// Whether the relations are there (else the statement runs, and says what is missing).
bool LeaseCatalogReady() {
    if (lease_catalog.valid) return true;
    if (!lease_catalog_callback) {
        CacheRegisterRelcacheCallback(ForgetLeaseCatalog, (Datum)0);
        lease_catalog_callback = true;
    }
    LeaseCatalog c;
    Oid ns = get_namespace_oid("mcp", true);
    if (!OidIsValid(ns)) return false;
    c.credentials = get_relname_relid("mcp_credentials", ns);
    c.lease_index = get_relname_relid("mcp_credentials_refresh_lease_idx", ns);
    if (!OidIsValid(c.credentials) || !OidIsValid(c.lease_index)) return false;
    c.user_id = get_attnum(c.credentials, "user_id");
    c.credential_id = get_attnum(c.credentials, "credential_id");
    c.instance_id = get_attnum(c.credentials, "instance_id");
    c.refresh_state = get_attnum(c.credentials, "refresh_state");
    if (c.user_id == InvalidAttrNumber || c.credential_id == InvalidAttrNumber ||
        c.instance_id == InvalidAttrNumber || c.refresh_state == InvalidAttrNumber)
        return false;
    c.valid = true;
    lease_catalog = c;
    return true;
}

bool TextEquals(Datum value, const char* s) {
    struct varlena* v = PG_DETOAST_DATUM_PACKED(value);
    size_t n = strlen(s);
    return VARSIZE_ANY_EXHDR(v) == n && memcmp(VARDATA_ANY(v), s, n) == 0;
}

// The row whose lease is `lease`, if any: its key, instance, and whether it is not ok.
bool FindLeasedRowDirect(Datum lease, pg_uuid_t* user_id, pg_uuid_t* credential_id,
                         pg_uuid_t* instance_id, bool* recovered) {
    const LeaseCatalog& c = lease_catalog;
    CommandCounterIncrement();
    Snapshot snapshot = RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot()
                                                                     : GetLatestSnapshot());
    Relation rel = table_open(c.credentials, AccessShareLock);
    Relation index = index_open(c.lease_index, AccessShareLock);
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, lease);
    IndexScanDesc scan = mcp_platform::pg_compat::IndexBeginScan(rel, index, snapshot, 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    if (found) {
        bool isnull = false;
        *user_id = *DatumGetUUIDP(slot_getattr(slot, c.user_id, &isnull));
        *credential_id = *DatumGetUUIDP(slot_getattr(slot, c.credential_id, &isnull));
        *instance_id = *DatumGetUUIDP(slot_getattr(slot, c.instance_id, &isnull));
        *recovered = !TextEquals(slot_getattr(slot, c.refresh_state, &isnull), "ok");
    }
    index_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    index_close(index, NoLock);
    table_close(rel, NoLock);
    UnregisterSnapshot(snapshot);
    return found;
}

// MC203, in the words of mcp_internal.lease_lost() (whatever the cause, the worker's answer is
// the same: discard what it has).
[[noreturn]] void RaiseLeaseLost() {
    ereport(ERROR,
            (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kLeaseLost)),
             errmsg("refresh lease lost"),
             errdetail("The lease ran out and another worker took the credential over, or it was "
                       "settled already, or the tenant re-authorised or revoked the credential."),
             errhint("Discard the result of this refresh; the credential is in other hands.")));
    pg_unreachable();
}

[[noreturn]] void RaiseInvalid(const char* message) {
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s", message)));
    pg_unreachable();
}

// A secret argument: its text (detoasted when it was toasted: then a copy of ours, which we
// wipe) or nullptr for NULL.
struct SecretArg {
    text* value = nullptr;
    bool copied = false;
};

SecretArg GetSecretArg(FunctionCallInfo fcinfo, int argno) {
    SecretArg arg;
    if (PG_ARGISNULL(argno)) return arg;
    arg.value = PG_GETARG_TEXT_PP(argno);
    arg.copied = reinterpret_cast<Pointer>(arg.value) != DatumGetPointer(PG_GETARG_DATUM(argno));
    return arg;
}

void WipeSecretArg(const SecretArg& arg) {
    if (arg.copied) OPENSSL_cleanse(VARDATA_ANY(arg.value), VARSIZE_ANY_EXHDR(arg.value));
}

// Whether a value has more than max_chars characters (at most 4 bytes a character: a short
// value needs no counting).
bool LongerThan(const text* value, int max_chars) {
    size_t bytes = VARSIZE_ANY_EXHDR(value);
    return bytes > static_cast<size_t>(max_chars) &&
           pg_mbstrlen_with_len(VARDATA_ANY(value), static_cast<int>(bytes)) > max_chars;
}

// 22001 as mcp_internal.check_secret_length words it (the field named, never the value); the
// caller wipes its copies first.
[[noreturn]] void RaiseTooLong(const char* field, int max_chars) {
    ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
                    errmsg("%s is longer than %d characters", field, max_chars),
                    errdetail("field=%s max_chars=%d", field, max_chars)));
    pg_unreachable();
}

}  // namespace

// mcp_internal.refresh_clock() → timestamptz: the lifecycle's "now": the transaction's start
// time, shifted by mcp_platform.refresh_clock_offset (0 except in tests).
MCP_PG_FUNCTION_C(mcp_refresh_clock) { PG_RETURN_TIMESTAMPTZ(RefreshClock()); }

// mcp.complete_refresh(lease_token uuid, access_token text, refresh_token text, expires_at
// timestamptz, token_scope text DEFAULT NULL) → void: settles a lease with the refreshed tokens
// (see kSettleSql); a recovery (the credential was not ok: cooling) is an event. 22023 / 22001
// bad input, MC203 the lease is lost (nothing changes).
MCP_PG_FUNCTION_C(mcp_complete_refresh) {
    if (PG_ARGISNULL(0)) RaiseInvalid("lease_token must not be null");
    Datum lease = PG_GETARG_DATUM(0);
    SecretArg access = GetSecretArg(fcinfo, 1);
    if (access.value == nullptr || VARSIZE_ANY_EXHDR(access.value) == 0)
        RaiseInvalid("access_token must not be empty");
    SecretArg refresh = GetSecretArg(fcinfo, 2);
    text* scope = PG_ARGISNULL(4) ? nullptr : PG_GETARG_TEXT_PP(4);
    const char* too_long = nullptr;
    int max_chars = 0;
    if (LongerThan(access.value, 8192))
        too_long = "access_token", max_chars = 8192;
    else if (refresh.value != nullptr && LongerThan(refresh.value, 8192))
        too_long = "refresh_token", max_chars = 8192;
    else if (scope != nullptr && LongerThan(scope, 4096))
        too_long = "token_scope", max_chars = 4096;
    if (too_long != nullptr || (refresh.value != nullptr && VARSIZE_ANY_EXHDR(refresh.value) == 0) ||
        (!PG_ARGISNULL(3) && TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(3)))) {
        WipeSecretArg(access);
        if (refresh.value != nullptr) WipeSecretArg(refresh);
        if (too_long != nullptr) RaiseTooLong(too_long, max_chars);
        if (refresh.value != nullptr && VARSIZE_ANY_EXHDR(refresh.value) == 0)
            RaiseInvalid("refresh_token must be NULL (keep the stored one) or not empty");
        RaiseInvalid("expires_at must be finite");
    }
    bool has_expiry = !PG_ARGISNULL(3);
    TimestampTz expires_at = has_expiry ? PG_GETARG_TIMESTAMPTZ(3) : 0;
    TimestampTz clock = RefreshClock();
    TimestampTz due =
        ToTimestamp(mcp_platform::RefreshDueAt(has_expiry, expires_at, clock, CurrentSettings()));

    int nest_level = mcp_platform::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    pg_uuid_t user_id, credential_id, instance_id;
    bool recovered = false;
    bool found = false;
    if (!mcp_platform::CitusLoaded() && LeaseCatalogReady()) {
        found = FindLeasedRowDirect(lease, &user_id, &credential_id, &instance_id, &recovered);
    } else {
        Oid lease_types[1] = {UUIDOID};
        mcp_platform::ExecuteStatement(&leased_row_plan, kLeasedRowSql, 1, lease_types, &lease,
                                       nullptr, SPI_OK_SELECT);
        found = SPI_processed > 0;
        if (found) {
            HeapTuple row = SPI_tuptable->vals[0];
            TupleDesc desc = SPI_tuptable->tupdesc;
            bool isnull = false;
            user_id = *DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull));
            credential_id = *DatumGetUUIDP(SPI_getbinval(row, desc, 2, &isnull));
            instance_id = *DatumGetUUIDP(SPI_getbinval(row, desc, 3, &isnull));
            char* state = SPI_getvalue(row, desc, 4);
            recovered = state != nullptr && strcmp(state, "ok") != 0;
        }
        SPI_freetuptable(SPI_tuptable);
    }
    if (!found) {
        WipeSecretArg(access);
        if (refresh.value != nullptr) WipeSecretArg(refresh);
        RaiseLeaseLost();
    }

    Datum sealed_access = mcp_platform::SealCredentialField(
        &user_id, &instance_id, "access_token", access.value, access.copied, nullptr);
    Datum sealed_refresh = (Datum)0;
    if (refresh.value != nullptr)
        sealed_refresh = mcp_platform::SealCredentialField(
            &user_id, &instance_id, "refresh_token", refresh.value, refresh.copied, nullptr);
    // what jsonb_strip_nulls(jsonb_build_object('refresh_token_replaced', …, 'event', …)) made
    const char* metadata =
        refresh.value != nullptr
            ? (recovered ? "{\"event\": \"recovered\", \"refresh_token_replaced\": true}"
                         : "{\"refresh_token_replaced\": true}")
            : (recovered ? "{\"event\": \"recovered\", \"refresh_token_replaced\": false}"
                         : "{\"refresh_token_replaced\": false}");

    Oid types[11] = {UUIDOID,        UUIDOID,     UUIDOID,        BYTEAOID,
                     BYTEAOID,       TIMESTAMPTZOID, TEXTOID,     TIMESTAMPTZOID,
                     TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID};
    Datum values[11] = {UUIDPGetDatum(&user_id),
                        UUIDPGetDatum(&credential_id),
                        lease,
                        sealed_access,
                        sealed_refresh,
                        TimestampTzGetDatum(expires_at),
                        scope != nullptr ? PointerGetDatum(scope) : (Datum)0,
                        TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
                        TimestampTzGetDatum(clock),
                        TimestampTzGetDatum(due),
                        (Datum)0};
    char nulls[12] = "           ";
    if (refresh.value == nullptr) nulls[4] = 'n';
    if (!has_expiry) nulls[5] = 'n';
    if (scope == nullptr) nulls[6] = 'n';
    Datum metadata_value = DirectFunctionCall1(jsonb_in, CStringGetDatum(metadata));
    if (mcp_platform::CitusLoaded()) {
        // one statement on the tenant's shard, the audit row written by it
        values[10] = metadata_value;
        mcp_platform::ExecuteStatement(&settle_plan, kSettleSql, 11, types, values, nulls,
                                       SPI_OK_SELECT);
        bool isnull = false;
        int64 settled =
            DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        if (settled == 0) RaiseLeaseLost();
        SPI_freetuptable(SPI_tuptable);
    } else {
        mcp_platform::ExecuteStatement(&settle_update_plan, kSettleUpdateSql, 10, types, values,
                                       nulls, SPI_OK_UPDATE);
        if (SPI_processed == 0) RaiseLeaseLost();
        mcp_platform::AuditRow row{UUIDPGetDatum(&user_id), UUIDPGetDatum(&instance_id), "refresh",
                                   "success", "oauth", metadata_value};
        if (!mcp_platform::WriteAuditRow(fcinfo, row)) {
            Oid audit_types[3] = {UUIDOID, UUIDOID, JSONBOID};
            Datum audit_args[3] = {row.user_id, row.instance_id, metadata_value};
            mcp_platform::ExecuteStatement(&refresh_audit_plan, kRefreshAuditSql, 3, audit_types,
                                           audit_args, nullptr, SPI_OK_INSERT);
        }
    }
    if (recovered) {
        Oid event_types[2] = {UUIDOID, UUIDOID};
        Datum event_args[2] = {UUIDPGetDatum(&user_id), UUIDPGetDatum(&instance_id)};
        mcp_platform::ExecuteStatement(&recovered_event_plan, kRecoveredEventSql, 2, event_types,
                                       event_args, nullptr, SPI_OK_SELECT);
    }
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mcp_platform::RestoreSearchPath(nest_level);
    PG_RETURN_VOID();
}

// mcp_internal.refresh_due_at(expires_at timestamptz, stored_at timestamptz) → timestamptz:
// when tokens stored at stored_at (expiring at expires_at, NULL: no expiry) become due. NULL
// when stored_at is NULL.
MCP_PG_FUNCTION_C(mcp_refresh_due_at) {
    if (PG_ARGISNULL(1)) PG_RETURN_NULL();
    bool has_expiry = !PG_ARGISNULL(0);
    Micros expires_at = has_expiry ? PG_GETARG_TIMESTAMPTZ(0) : 0;
    Micros stored_at = PG_GETARG_TIMESTAMPTZ(1);
    if (TIMESTAMP_NOT_FINITE(stored_at) || (has_expiry && TIMESTAMP_NOT_FINITE(expires_at)))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("token times must be finite")));
    PG_RETURN_TIMESTAMPTZ(ToTimestamp(
        mcp_platform::RefreshDueAt(has_expiry, expires_at, stored_at, CurrentSettings())));
}

// mcp_internal.refresh_failure(failures integer, failure_days integer, last_failure_at
// timestamptz, at timestamptz, permanent boolean, OUT state text, OUT failures integer,
// OUT failure_days integer, OUT next_attempt_at timestamptz): a failed refresh at `at`.
MCP_PG_FUNCTION_C(mcp_refresh_failure) {
    if (PG_ARGISNULL(3))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("at must not be null")));
    mcp_platform::FailureState before;
    before.failures = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT32(0);
    before.failure_days = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1);
    if (PG_ARGISNULL(2))
        before.failure_days = 0;  // no failure recorded: nothing counted yet
    else
        before.last_counted_failure = PG_GETARG_TIMESTAMPTZ(2);
    Micros at = PG_GETARG_TIMESTAMPTZ(3);
    bool permanent = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
    mcp_platform::FailureOutcome out =
        mcp_platform::AfterFailure(before, at, permanent, CurrentSettings());

    TupleDesc tupdesc;
    if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "mcp_refresh_failure must return a record");
    tupdesc = BlessTupleDesc(tupdesc);
    Datum values[4];
    bool nulls[4] = {false, false, false, !out.has_next_attempt};
    values[0] = CStringGetTextDatum(mcp_platform::RefreshStateName(out.state));
    values[1] = Int32GetDatum(out.failure.failures);
    values[2] = Int32GetDatum(out.failure.failure_days);
    values[3] = TimestampTzGetDatum(ToTimestamp(out.next_attempt_at));
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
