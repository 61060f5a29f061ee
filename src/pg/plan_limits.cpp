// mcp.enforce_plan_limit(): the C trigger that enforces plan limits (SPEC §5) and keeps the
// per-user and per-service instance counters exact.
//
// The invariant: user_plans.active_instances = the number of the user's rows in
// mcp_service_table with status = 'active' ("counted" rows), and for each service,
// sum(service_counters.active) = the number of its counted rows and sum(created) = the number
// of rows ever inserted. The trigger fires AFTER INSERT, AFTER UPDATE OF status, expires_at
// (when one of them really changes) and AFTER DELETE, FOR EACH ROW.
//
// Enforcement is one conditional UPDATE of the user's plan row:
//     UPDATE user_plans SET active_instances = active_instances + 1
//      WHERE user_id = $1 AND active_instances + 1 <= <effective limit of that very row>
// run through SPI with read_only = false, so each execution takes a fresh snapshot.
//  * READ COMMITTED: a concurrent activation holds the row lock; we wait, then the executor
//    re-evaluates the WHERE clause on the committed row (EvalPlanQual), so the loser sees the
//    winner's count and gets no row: MC001.
//  * REPEATABLE READ / SERIALIZABLE: updating a row changed by a transaction that committed
//    after our snapshot raises 40001.
//  * A plan change (set_plan) updates the same row, so it serialises with activations the
//    same way; the limit is computed from the row being updated, never from an earlier read.
// The users row is never locked, so foreign-key inserts for the user never wait on us.
//
// When the conditional UPDATE finds no room, the user's own counted rows whose expires_at has
// passed are marked 'expired' (each such UPDATE fires this trigger again and decrements the
// count) and the UPDATE is retried once: an instance past its expires_at never blocks a new
// activation, even before mcp.expire_instances() has run.
//
// The same statement bumps the service's counter in one of kServiceShards rows, chosen by
// the backend's id: concurrent backends creating instances of one service update different
// rows, so they never queue on one hot row (the view mcp.service_stats sums the shards).
//
// Plain C: no C++ object is alive in these frames, so Postgres errors are raised directly.
#include "core/errors.hpp"
#include "core/plan_rules.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "fmgr.h"
}

namespace {

// Shards per service in mcp.service_counters (backend id modulo this).
constexpr int kServiceShards = 64;

// $1 user, $2 service, $3 shard, $4 created delta, $5 active delta, $6 check the plan.
// Returns (plan_ok, service_ok). With $6 false the plan row is not touched; the service part
// runs only when the plan part succeeded (or was not asked for) and the service is active.
const char* const kActivateSql =
    "WITH plan AS ("
    "  UPDATE mcp.user_plans AS p"
    "     SET active_instances = p.active_instances OPERATOR(pg_catalog.+) $5"
    "   WHERE $6 AND p.user_id OPERATOR(pg_catalog.=) $1"
    "     AND CASE WHEN p.plan_type OPERATOR(pg_catalog.=) 'pro'"
    "               AND (p.expires_at IS NULL"
    "                    OR p.expires_at OPERATOR(pg_catalog.>) pg_catalog.now())"
    "              THEN (p.max_instances IS NULL"
    "                    OR (p.active_instances OPERATOR(pg_catalog.+) $5)"
    "                       OPERATOR(pg_catalog.<=) p.max_instances)"
    "              ELSE (p.active_instances OPERATOR(pg_catalog.+) $5) OPERATOR(pg_catalog.<=) 1"
    "         END"
    "  RETURNING 1),"
    " svc AS ("
    "  INSERT INTO mcp.service_counters AS c (mcp_service_id, shard, created, active)"
    "  SELECT t.mcp_service_id, $3, $4, $5 FROM mcp.mcp_table AS t"
    "   WHERE t.mcp_service_id OPERATOR(pg_catalog.=) $2 AND t.is_active"
    "     AND (NOT $6 OR EXISTS (SELECT 1 FROM plan))"
    "  ON CONFLICT (mcp_service_id, shard) DO UPDATE"
    "     SET created = c.created OPERATOR(pg_catalog.+) excluded.created,"
    "         active = c.active OPERATOR(pg_catalog.+) excluded.active"
    "  RETURNING 1)"
    " SELECT EXISTS (SELECT 1 FROM plan), EXISTS (SELECT 1 FROM svc)";

// $1 user, $2 service, $3 shard. Never refused. The plan row is absent while a user is being
// deleted (the cascade may remove it first); a count already at 0 means the counter drifted
// (e.g. TRUNCATE bypassed the trigger): it stays at 0 and mcp.verify_counters() reports it.
const char* const kDeactivateSql =
    "WITH plan AS ("
    "  UPDATE mcp.user_plans AS p"
    "     SET active_instances = p.active_instances OPERATOR(pg_catalog.-) 1"
    "   WHERE p.user_id OPERATOR(pg_catalog.=) $1"
    "     AND p.active_instances OPERATOR(pg_catalog.>) 0"
    "  RETURNING 1)"
    " INSERT INTO mcp.service_counters AS c (mcp_service_id, shard, created, active)"
    " VALUES ($2, $3, 0, -1)"
    " ON CONFLICT (mcp_service_id, shard) DO UPDATE"
    "    SET active = c.active OPERATOR(pg_catalog.+) excluded.active";

// $1 user, $2 the instance being changed (its own row is never touched here). Rows another
// transaction has locked are skipped, not waited for: we may already hold the plan row, and
// that transaction may be waiting for it (a renewal of the very row) — waiting would deadlock.
// A skipped row keeps blocking this activation, which is then refused: conservative.
const char* const kSweepSql =
    "UPDATE mcp.mcp_service_table AS s SET status = 'expired'"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1"
    "   AND s.status OPERATOR(pg_catalog.=) 'active'"
    "   AND s.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
    "   AND s.instance_id IN ("
    "       SELECT x.instance_id FROM mcp.mcp_service_table AS x"
    "        WHERE x.user_id OPERATOR(pg_catalog.=) $1"
    "          AND x.status OPERATOR(pg_catalog.=) 'active'"
    "          AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
    "          AND x.instance_id OPERATOR(pg_catalog.<>) $2"
    "          FOR NO KEY UPDATE SKIP LOCKED)";

const char* const kPlanInfoSql =
    "SELECT p.plan_type OPERATOR(pg_catalog.=) 'pro', p.max_instances,"
    "       (p.expires_at IS NOT NULL AND p.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()),"
    "       p.active_instances"
    "  FROM mcp.user_plans AS p WHERE p.user_id OPERATOR(pg_catalog.=) $1";

const char* const kServiceNameSql =
    "SELECT t.mcp_service_name::pg_catalog.text FROM mcp.mcp_table AS t"
    " WHERE t.mcp_service_id OPERATOR(pg_catalog.=) $1";

SPIPlanPtr activate_plan = nullptr;
SPIPlanPtr deactivate_plan = nullptr;
SPIPlanPtr sweep_plan = nullptr;

SPIPlanPtr Prepare(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types) {
    if (*cache == nullptr) {
        SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
        if (plan == nullptr)
            elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0) elog(ERROR, "SPI_keepplan failed");
        *cache = plan;
    }
    return *cache;
}

void Execute(SPIPlanPtr plan, Datum* values, int expected) {
    int rc = SPI_execute_plan(plan, values, nullptr, false, 0);
    if (rc != expected) elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
}

bool ResultBool(int column) {
    bool isnull = false;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, column, &isnull);
    return !isnull && DatumGetBool(d);
}

// Column numbers of mcp_service_table, looked up once per relation.
struct Columns {
    Oid relid = InvalidOid;
    int user_id = 0, mcp_service_id = 0, instance_id = 0, status = 0, expires_at = 0;
};
Columns columns;

int ColumnNumber(TupleDesc desc, Relation rel, const char* name) {
    int attnum = SPI_fnumber(desc, name);
    if (attnum <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("relation \"%s\" has no column \"%s\"",
                               RelationGetRelationName(rel), name)));
    return attnum;
}

const Columns& ColumnsOf(Relation rel) {
    if (columns.relid != RelationGetRelid(rel)) {
        TupleDesc desc = RelationGetDescr(rel);
        Columns c;
        c.user_id = ColumnNumber(desc, rel, "user_id");
        c.mcp_service_id = ColumnNumber(desc, rel, "mcp_service_id");
        c.instance_id = ColumnNumber(desc, rel, "instance_id");
        c.status = ColumnNumber(desc, rel, "status");
        c.expires_at = ColumnNumber(desc, rel, "expires_at");
        c.relid = RelationGetRelid(rel);
        columns = c;
    }
    return columns;
}

// The owner of the trigger function (the extension's owner): the counters are written with
// its rights, as a SECURITY DEFINER function would, but without the per-call GUC save and
// restore that a SET search_path clause costs (every name and operator here is qualified).
Oid cached_function = InvalidOid;
Oid cached_owner = InvalidOid;

Oid FunctionOwner(Oid function) {
    if (function != cached_function) {
        HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for function %u", function);
        cached_owner = ((Form_pg_proc)GETSTRUCT(tuple))->proowner;
        ReleaseSysCache(tuple);
        cached_function = function;
    }
    return cached_owner;
}

mcp_platform::InstanceState StateOf(HeapTuple tuple, TupleDesc desc, const Columns& c,
                                    TimestampTz now) {
    mcp_platform::InstanceState state;
    state.exists = true;
    bool isnull = false;
    Datum status = heap_getattr(tuple, c.status, desc, &isnull);
    if (!isnull) {
        struct varlena* v = PG_DETOAST_DATUM_PACKED(status);
        state.status_active =
            VARSIZE_ANY_EXHDR(v) == 6 && memcmp(VARDATA_ANY(v), "active", 6) == 0;
    }
    Datum expires = heap_getattr(tuple, c.expires_at, desc, &isnull);
    state.past_expires_at = !isnull && DatumGetTimestampTz(expires) <= now;
    return state;
}

Datum GetColumn(HeapTuple tuple, TupleDesc desc, int attnum) {
    bool isnull = false;
    Datum d = heap_getattr(tuple, attnum, desc, &isnull);
    if (isnull) elog(ERROR, "unexpected NULL in column %d of mcp_service_table", attnum);
    return d;
}

const char* UuidText(Datum uuid) { return DatumGetCString(DirectFunctionCall1(uuid_out, uuid)); }

// Raises MC001 for the user (inside SPI; the caller's SPI connection is torn down by abort).
void RaiseLimitReached(Datum user_id) {
    Oid types[1] = {UUIDOID};
    Datum values[1] = {user_id};
    int rc = SPI_execute_with_args(kPlanInfoSql, 1, types, values, nullptr, false, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(MAKE_SQLSTATE('M', 'C', '0', '0', '1')),
                        errmsg("plan limit reached: user %s has no plan", UuidText(user_id)),
                        errhint("Assign one with mcp.set_plan().")));
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull = false;
    mcp_platform::PlanView plan;
    plan.is_pro = ResultBool(1);
    Datum max_instances = SPI_getbinval(row, desc, 2, &isnull);
    plan.has_max_instances = !isnull;
    plan.max_instances = isnull ? 0 : DatumGetInt32(max_instances);
    plan.plan_expired = ResultBool(3);
    long active = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
    char message[256], detail[256], hint[256];
    mcp_platform::FormatLimitError(plan, active, message, sizeof message, detail, sizeof detail,
                                   hint, sizeof hint);
    ereport(ERROR, (errcode(MAKE_SQLSTATE('M', 'C', '0', '0', '1')), errmsg_internal("%s", message),
                    errdetail_internal("%s", detail), errhint("%s", hint)));
}

void RaiseServiceInactive(Datum service_id) {
    Oid types[1] = {UUIDOID};
    Datum values[1] = {service_id};
    int rc = SPI_execute_with_args(kServiceNameSql, 1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(MAKE_SQLSTATE('M', 'C', '0', '0', '2')),
                        errmsg("service %s does not exist", UuidText(service_id))));
    char* name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    ereport(ERROR, (errcode(MAKE_SQLSTATE('M', 'C', '0', '0', '2')),
                    errmsg("service \"%s\" is inactive", name),
                    errdetail("An inactive service accepts no new or reactivated instances.")));
}

// Runs kActivateSql; returns plan_ok and sets *service_ok.
bool RunActivate(Datum* values, bool* service_ok) {
    Oid types[6] = {UUIDOID, UUIDOID, INT2OID, INT8OID, INT4OID, BOOLOID};
    Execute(Prepare(&activate_plan, kActivateSql, 6, types), values, SPI_OK_SELECT);
    if (SPI_processed != 1) elog(ERROR, "unexpected result of the plan-limit statement");
    *service_ok = ResultBool(2);
    return ResultBool(1);
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(mcp_enforce_plan_limit);
Datum mcp_enforce_plan_limit(PG_FUNCTION_ARGS) {
    using mcp_platform::CounterChange;
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("mcp.enforce_plan_limit() must be called as a trigger")));
    TriggerData* trigdata = (TriggerData*)fcinfo->context;
    TriggerEvent event = trigdata->tg_event;
    if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
        TRIGGER_FIRED_BY_TRUNCATE(event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("mcp.enforce_plan_limit() must be fired AFTER INSERT, UPDATE or "
                               "DELETE FOR EACH ROW")));

    Relation rel = trigdata->tg_relation;
    TupleDesc desc = RelationGetDescr(rel);
    const Columns& c = ColumnsOf(rel);
    TimestampTz now = GetCurrentTransactionStartTimestamp();

    mcp_platform::InstanceState before, after;
    HeapTuple row;  // the row whose ids are used: NEW, or OLD for a DELETE
    if (TRIGGER_FIRED_BY_INSERT(event)) {
        row = trigdata->tg_trigtuple;
        after = StateOf(row, desc, c, now);
    } else if (TRIGGER_FIRED_BY_UPDATE(event)) {
        before = StateOf(trigdata->tg_trigtuple, desc, c, now);
        row = trigdata->tg_newtuple;
        after = StateOf(row, desc, c, now);
    } else {
        row = trigdata->tg_trigtuple;
        before = StateOf(row, desc, c, now);
    }
    const bool inserted = TRIGGER_FIRED_BY_INSERT(event);
    const CounterChange change = mcp_platform::ClassifyChange(before, after);
    if (change == CounterChange::kNone && !inserted) return PointerGetDatum(nullptr);

    Datum user_id = GetColumn(row, desc, c.user_id);
    Datum service_id = GetColumn(row, desc, c.mcp_service_id);
    Datum instance_id = GetColumn(row, desc, c.instance_id);
    int shard = MyBackendId > 0 ? MyBackendId % kServiceShards : 0;

    Oid save_userid;
    int save_sec_context;
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    SetUserIdAndSecContext(FunctionOwner(fcinfo->flinfo->fn_oid),
                           save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");

    if (change == CounterChange::kDeactivate) {
        Oid types[3] = {UUIDOID, UUIDOID, INT2OID};
        Datum values[3] = {user_id, service_id, Int16GetDatum(shard)};
        Execute(Prepare(&deactivate_plan, kDeactivateSql, 3, types), values, SPI_OK_INSERT);
    } else {
        const bool check_plan = change == CounterChange::kActivate || change == CounterChange::kRevive;
        Datum values[6] = {user_id,
                           service_id,
                           Int16GetDatum(shard),
                           Int64GetDatum(inserted ? 1 : 0),
                           Int32GetDatum(change == CounterChange::kActivate ? 1 : 0),
                           BoolGetDatum(check_plan)};
        bool service_ok = false;
        bool plan_ok = RunActivate(values, &service_ok);
        if (check_plan && !plan_ok) {
            // No room: un-count the user's rows past their expires_at, then try once more.
            Oid types[2] = {UUIDOID, UUIDOID};
            Datum sweep_values[2] = {user_id, instance_id};
            Execute(Prepare(&sweep_plan, kSweepSql, 2, types), sweep_values, SPI_OK_UPDATE);
            if (SPI_processed > 0) plan_ok = RunActivate(values, &service_ok);
            if (!plan_ok) RaiseLimitReached(user_id);
        }
        if (!service_ok) RaiseServiceInactive(service_id);
    }

    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    SetUserIdAndSecContext(save_userid, save_sec_context);
    return PointerGetDatum(nullptr);
}
}
