// mcp_internal.enforce_plan_limit() (mcp.enforce_plan_limit() in release 1.0; its messages use
// the 1.1 name): the C trigger that enforces plan limits (how many active instances a user's
// plan allows, core/plan_rules.hpp; an inactive service accepts none) and keeps the per-user
// active-instance counter exact.
//
// The invariant: user_plans.active_instances = the number of the user's rows in
// mcp_service_table with status = 'active' ("counted" rows). The trigger fires AFTER INSERT,
// AFTER UPDATE OF status, expires_at (when one of them really changes) and AFTER DELETE, FOR
// EACH ROW, and moves the counter with exactly the semantics of
//     UPDATE user_plans SET active_instances = active_instances + 1
//      WHERE user_id = $1 AND active_instances + 1 <= <effective limit of that very row>
// but without the executor (a plan, check constraints and triggers per row would cost more
// than the INSERT itself; see README "Performance"): find the row through the unique index
// on user_id, lock it FOR NO KEY UPDATE with table_tuple_lock(), evaluate the limit on the
// locked row, and heap_update() it (index entries are added if the update is not HOT).
//  * READ COMMITTED: the lookup uses a fresh snapshot and the lock follows the update chain to
//    the latest version (TUPLE_LOCK_FLAG_FIND_LAST_VERSION), waiting for a concurrent
//    activation to finish — the loser re-checks the winner's count and gets MC001, exactly
//    like an UPDATE re-checking its WHERE clause (EvalPlanQual).
//  * REPEATABLE READ / SERIALIZABLE: the lookup uses the transaction snapshot and the lock does
//    not follow updates: a row changed by a transaction that committed after our snapshot
//    raises 40001, as an UPDATE would. (heap_update and the index scan take the SSI
//    predicate locks and conflict checks an UPDATE takes.)
//  * A plan change (set_plan) updates the same row, so it serialises with activations the
//    same way; the limit is computed from the locked row, never from an earlier read.
// The users row is never locked, so foreign-key inserts for the user never wait on us.
// The counter column is internal: its updates do not fire user_plans' triggers (updated_at
// reflects changes of the plan's terms, not of the count).
//
// When there is no room, the user's own counted rows whose expires_at has passed are marked
// 'expired' through SPI (each such UPDATE fires this trigger again and decrements the count)
// and the check is retried once: an instance past its expires_at never blocks a new
// activation, even before mcp.expire_instances() has run.
#include "core/errors.hpp"
#include "core/plan_rules.hpp"
#include "pg/boundary.hpp"
#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "fmgr.h"
}
#include "pg/compat.hpp"

namespace {

// $1 user, $2 the instance being changed (its own row is never touched here). Rows another
// transaction has locked are skipped, not waited for: we may already hold the plan row, and
// that transaction may be waiting for it (a renewal of the very row) — waiting would deadlock.
// A skipped row keeps blocking this activation, which is then refused: conservative.
const char* const kSweepSql =
    "UPDATE mcp.mcp_service_table AS s SET status = 'expired'"
    " WHERE s.user_id OPERATOR(pg_catalog.=) $1"
    "   AND s.status OPERATOR(pg_catalog.=) 'active'"
    "   AND s.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
    "   AND s.instance_id OPERATOR(pg_catalog.=) ANY (ARRAY("
    "       SELECT x.instance_id FROM mcp.mcp_service_table AS x"
    "        WHERE x.user_id OPERATOR(pg_catalog.=) $1"
    "          AND x.status OPERATOR(pg_catalog.=) 'active'"
    "          AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()"
    "          AND x.instance_id OPERATOR(pg_catalog.<>) $2"
    "          FOR NO KEY UPDATE SKIP LOCKED))";

// Column numbers of mcp_service_table, looked up once per relation.
struct Columns {
    Oid relid = InvalidOid;
    int user_id = 0, mcp_service_id = 0, instance_id = 0, status = 0, expires_at = 0;
};
Columns columns;

int ColumnNumber(TupleDesc desc, Relation rel, const char* name) {
    int attnum = SPI_fnumber(desc, name);
    if (attnum <= 0)
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_COLUMN), errmsg("relation \"%s\" has no column \"%s\"",
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

// The owner of the trigger function (the extension's owner): the expiry sweep runs with its
// rights, as a SECURITY DEFINER function would, but without the per-call GUC save and restore
// that a SET search_path clause costs (every name and operator in it is schema-qualified).
// The counter itself is written below the permission layer (heap_update), which is why no
// role needs, or has, write access to user_plans.active_instances.
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
        state.status_active = VARSIZE_ANY_EXHDR(v) == 6 && memcmp(VARDATA_ANY(v), "active", 6) == 0;
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

// ---- the plan row, without the executor -------------------------------------------------------

// Relations and column numbers, looked up again whenever the trigger's own relation changes
// (a dropped and re-created extension in the same backend). On Citus the trigger fires on the
// shards of mcp_service_table on the node that holds them: the relations it needs are then the
// co-located shard of user_plans and the local placement of the reference table mcp_table
// (found by mcp_internal.plan_limit_shards(), once per shard and backend), and its expiry sweep
// updates the shard itself.
struct Catalog {
    Oid trigger_relid = InvalidOid;
    Oid plans = InvalidOid, plans_by_user = InvalidOid, services = InvalidOid,
        services_pkey = InvalidOid;
    int plan_type = 0, max_instances = 0, expires_at = 0, active_instances = 0;
    int is_active = 0, service_name = 0;
    const char* sweep_sql = kSweepSql;  // a shard's own text lives in TopMemoryContext
    SPIPlanPtr sweep_plan = nullptr;
};
// One entry per relation the trigger fired on in this backend: the table, or on a Citus worker
// each shard it holds (replaced round-robin beyond the size).
constexpr int kCatalogSlots = 64;
Catalog catalogs[kCatalogSlots];
int next_catalog_slot = 0;

Oid McpRelation(Oid ns, const char* name) {
    Oid relid = get_relname_relid(name, ns);
    if (!OidIsValid(relid)) elog(ERROR, "relation mcp.%s does not exist", name);
    return relid;
}

int AttributeNumber(Oid relid, const char* name) {
    AttrNumber attnum = get_attnum(relid, name);
    if (attnum == InvalidAttrNumber)
        elog(ERROR, "column \"%s\" of relation %s does not exist", name, get_rel_name(relid));
    return attnum;
}

// The shards a Citus shard of mcp_service_table works with (see Catalog), as `owner`:
// mcp_internal is not the caller's.
void ShardRelations(Oid owner, Relation trigger_rel, Catalog* c) {
    Oid save_userid;
    int save_sec_context;
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
    int nest_level = mcp_platform::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[1] = {REGCLASSOID};
    Datum values[1] = {ObjectIdGetDatum(RelationGetRelid(trigger_rel))};
    int rc = SPI_execute_with_args(
        "SELECT s.user_plans, s.user_plans_by_user, s.mcp_table, s.mcp_table_pkey"
        "  FROM mcp_internal.plan_limit_shards($1) AS s",
        1, types, values, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
    Oid found[4] = {InvalidOid, InvalidOid, InvalidOid, InvalidOid};
    if (SPI_processed == 1) {
        for (int i = 0; i < 4; i++) {
            bool isnull = false;
            Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
            found[i] = isnull ? InvalidOid : DatumGetObjectId(d);
        }
    }
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mcp_platform::RestoreSearchPath(nest_level);
    SetUserIdAndSecContext(save_userid, save_sec_context);
    for (Oid relid : found)
        if (!OidIsValid(relid))
            elog(ERROR, "the plan-limit trigger fired on \"%s\", which is neither "
                        "mcp.mcp_service_table nor a Citus shard of it with its co-located shards",
                 RelationGetRelationName(trigger_rel));
    c->plans = found[0];
    c->plans_by_user = found[1];
    c->services = found[2];
    c->services_pkey = found[3];
    // the sweep, on the shard itself (a query on the distributed table would be refused here)
    const char* qualified =
        quote_qualified_identifier(get_namespace_name(RelationGetNamespace(trigger_rel)),
                                   RelationGetRelationName(trigger_rel));
    StringInfoData sql;
    initStringInfo(&sql);
    const char* table = "mcp.mcp_service_table";
    for (const char* p = kSweepSql; *p != '\0';) {
        if (strncmp(p, table, strlen(table)) == 0) {
            appendStringInfoString(&sql, qualified);
            p += strlen(table);
        } else {
            appendStringInfoChar(&sql, *p++);
        }
    }
    c->sweep_sql = MemoryContextStrdup(TopMemoryContext, sql.data);
    pfree(sql.data);
}

Catalog& CatalogFor(Relation trigger_rel, Oid owner) {
    for (Catalog& c : catalogs)
        if (c.trigger_relid == RelationGetRelid(trigger_rel)) return c;
    Catalog c;
    if (strcmp(RelationGetRelationName(trigger_rel), "mcp_service_table") == 0) {
        Oid ns = RelationGetNamespace(trigger_rel);
        c.plans = McpRelation(ns, "user_plans");
        c.plans_by_user = McpRelation(ns, "user_plans_one_per_user");
        c.services = McpRelation(ns, "mcp_table");
        c.services_pkey = McpRelation(ns, "mcp_table_pkey");
    } else {
        ShardRelations(owner, trigger_rel, &c);
    }
    c.plan_type = AttributeNumber(c.plans, "plan_type");
    c.max_instances = AttributeNumber(c.plans, "max_instances");
    c.expires_at = AttributeNumber(c.plans, "expires_at");
    c.active_instances = AttributeNumber(c.plans, "active_instances");
    c.is_active = AttributeNumber(c.services, "is_active");
    c.service_name = AttributeNumber(c.services, "mcp_service_name");
    c.trigger_relid = RelationGetRelid(trigger_rel);
    Catalog& slot = catalogs[next_catalog_slot];
    next_catalog_slot = (next_catalog_slot + 1) % kCatalogSlots;
    if (slot.sweep_sql != kSweepSql) pfree(const_cast<char*>(slot.sweep_sql));
    if (slot.sweep_plan != nullptr) SPI_freeplan(slot.sweep_plan);
    slot = c;
    return slot;
}

// The snapshot an UPDATE would use: the transaction's under REPEATABLE READ and SERIALIZABLE,
// a fresh one under READ COMMITTED.
Snapshot StatementSnapshot() {
    return RegisterSnapshot(IsolationUsesXactSnapshot() ? GetTransactionSnapshot()
                                                        : GetLatestSnapshot());
}

// Finds the row visible to the snapshot through a unique index on one uuid column.
bool FetchByUuid(Relation rel, Relation index, Snapshot snapshot, Datum key_value,
                 TupleTableSlot* slot) {
    ScanKeyData key;
    ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ, key_value);
    IndexScanDesc scan = mcp_platform::pg_compat::IndexBeginScan(rel, index, snapshot, 1, 0);
    index_rescan(scan, &key, 1, nullptr, 0);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    index_endscan(scan);
    return found;
}

// Adds the index entries a new tuple version needs: all of them after a non-HOT update, the
// summarizing indexes' only after a HOT update that changed one of their columns (16+).
void InsertIndexEntries(Relation rel, HeapTuple tuple, bool only_summarizing) {
    EState* estate = CreateExecutorState();
    ResultRelInfo* result_rel = makeNode(ResultRelInfo);
    InitResultRelInfo(result_rel, rel, 1, nullptr, 0);
    ExecOpenIndices(result_rel, false);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsHeapTuple);
    ExecStoreHeapTuple(tuple, slot, false);
    mcp_platform::pg_compat::InsertIndexTuples(result_rel, slot, estate, only_summarizing);
    ExecDropSingleTupleTableSlot(slot);
    ExecCloseIndices(result_rel);
    FreeExecutorState(estate);
}

// The counter is moved below the executor (simple_heap_update plus the table's index entries):
// a trigger, a CHECK constraint, a stored generated column or a deferred unique or exclusion
// constraint that the extension does not know would be silently skipped on those writes.
// Refuse to move it, with a clear error, while the table has one (foreign-key triggers are
// internal and fine; plain and immediate unique indexes are maintained and checked).
// Whether `name` is `base`, or on a Citus shard `base` followed by the shard's suffix ("_<shard
// id>": Citus names a shard's triggers that way).
bool IsNamed(const char* name, const char* base, const char* shard_suffix) {
    size_t n = strlen(base);
    return strncmp(name, base, n) == 0 && (name[n] == '\0' || strcmp(name + n, shard_suffix) == 0);
}

void CheckPlansTableShape(Relation rel) {
    // "" on the table itself, "_<shard id>" on a Citus shard of it
    const char* relname = RelationGetRelationName(rel);
    const char* shard_suffix = relname + Min(strlen(relname), strlen("user_plans"));
    static const char* const kChecks[] = {"user_plans_plan_type_check",
                                          "user_plans_max_instances_check",
                                          "user_plans_features_object",
                                          "user_plans_active_instances_check"};
    const char* what = nullptr;
    const char* name = nullptr;
    TriggerDesc* triggers = rel->trigdesc;
    for (int i = 0; triggers != nullptr && what == nullptr && i < triggers->numtriggers; i++) {
        const Trigger* trigger = &triggers->triggers[i];
        if (trigger->tgisinternal ||
            IsNamed(trigger->tgname, "user_plans_set_updated_at", shard_suffix))
            continue;
        what = "a trigger";
        name = trigger->tgname;
    }
    TupleDesc desc = RelationGetDescr(rel);
    TupleConstr* constr = desc->constr;
    for (int i = 0; constr != nullptr && constr->has_generated_stored && what == nullptr &&
                    i < desc->natts;
         i++) {
        Form_pg_attribute attr = TupleDescAttr(desc, i);
        if (!attr->attisdropped && attr->attgenerated == ATTRIBUTE_GENERATED_STORED) {
            what = "a generated column";
            name = NameStr(attr->attname);
        }
    }
    for (int i = 0; constr != nullptr && what == nullptr && i < constr->num_check; i++) {
        bool known = false;
        for (const char* check : kChecks)
            known = known || IsNamed(constr->check[i].ccname, check, shard_suffix);
        if (!known) {
            what = "a CHECK constraint";
            name = constr->check[i].ccname;
        }
    }
    if (what == nullptr) {
        List* indexes = RelationGetIndexList(rel);
        ListCell* cell;
        foreach (cell, indexes) {
            HeapTuple tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(cell)));
            if (!HeapTupleIsValid(tuple)) continue;
            bool deferred = !((Form_pg_index)GETSTRUCT(tuple))->indimmediate;
            ReleaseSysCache(tuple);
            if (deferred && what == nullptr) {
                what = "a deferred constraint";
                name = get_rel_name(lfirst_oid(cell));
            }
        }
        list_free(indexes);
    }
    if (what != nullptr)
        ereport(ERROR,
                (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kFailedPrecondition)),
                 errmsg("mcp.user_plans has %s \"%s\" that the plan-limit counter cannot honour",
                        what, name),
                 errdetail("The active-instance counter of mcp.user_plans is written below the "
                           "executor: triggers, CHECK constraints, generated columns and deferred "
                           "constraints added to the table would be skipped on those writes."),
                 errhint("Drop it, or put it on a table of your own.")));
}

enum class PlanResult { kNoPlan, kNoRoom, kDone };

// Moves the user's counter by delta: +1 (activation: only within the limit), 0 (revival: the
// limit is checked, nothing written), -1 (deactivation: never refused; a count already at 0
// is a drift that mcp.verify_counters() reports, and stays 0). On kNoRoom, *plan and *active
// describe the locked row, for the error message.
PlanResult ChangePlanCounter(const Catalog& c, Datum user_id, int delta, TimestampTz now,
                             mcp_platform::PlanView* plan, long* active) {
    // Our own earlier changes (an earlier activation in this transaction, the sweep) become
    // visible, as SPI would make them.
    CommandCounterIncrement();
    Relation rel = table_open(c.plans, RowExclusiveLock);
    CheckPlansTableShape(rel);
    Relation index = index_open(c.plans_by_user, RowExclusiveLock);
    const bool xact_snapshot = IsolationUsesXactSnapshot();
    Snapshot snapshot = StatementSnapshot();
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    PlanResult result = PlanResult::kNoPlan;

    if (FetchByUuid(rel, index, snapshot, user_id, slot)) {
        ItemPointerData tid = slot->tts_tid;
        TM_FailureData failure;
        TM_Result lock = table_tuple_lock(
            rel, &tid, snapshot, slot, GetCurrentCommandId(true), LockTupleNoKeyExclusive,
            LockWaitBlock, xact_snapshot ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &failure);
        bool locked = false;
        switch (lock) {
            case TM_Ok:
                locked = true;
                break;
            case TM_Updated:
            case TM_Deleted:
                if (xact_snapshot)
                    ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                                    errmsg("could not serialize access due to concurrent update")));
                break;  // READ COMMITTED: the plan row was deleted meanwhile
            default:
                elog(ERROR, "unexpected result %d locking the plan row", (int)lock);
        }
        if (locked) {
            bool isnull = false;
            Datum type = slot_getattr(slot, c.plan_type, &isnull);
            plan->is_pro = !isnull && strcmp(TextDatumGetCString(type), "pro") == 0;
            Datum max_instances = slot_getattr(slot, c.max_instances, &isnull);
            plan->has_max_instances = !isnull;
            plan->max_instances = isnull ? 0 : DatumGetInt32(max_instances);
            Datum expires = slot_getattr(slot, c.expires_at, &isnull);
            plan->plan_expired = !isnull && DatumGetTimestampTz(expires) <= now;
            *active = DatumGetInt32(slot_getattr(slot, c.active_instances, &isnull));
            const long limit = mcp_platform::EffectiveLimit(*plan);

            long updated = *active + delta;
            if (delta > 0 && limit >= 0 && updated > limit) {
                result = PlanResult::kNoRoom;
            } else if (delta == 0 && limit >= 0 && *active > limit) {
                result = PlanResult::kNoRoom;
            } else {
                if (updated < 0) updated = 0;
                if (updated != *active) {
                    bool should_free = false;
                    HeapTuple old_tuple = ExecFetchSlotHeapTuple(slot, false, &should_free);
                    Datum value = Int32GetDatum((int32)updated);
                    bool value_isnull = false;
                    int attnum = c.active_instances;
                    HeapTuple new_tuple = heap_modify_tuple_by_cols(
                        old_tuple, RelationGetDescr(rel), 1, &attnum, &value, &value_isnull);
                    using mcp_platform::pg_compat::IndexUpdate;
                    IndexUpdate update = mcp_platform::pg_compat::SimpleHeapUpdate(
                        rel, &slot->tts_tid, new_tuple);
                    if (update != IndexUpdate::kNone)
                        InsertIndexEntries(rel, new_tuple,
                                           update == IndexUpdate::kSummarizingOnly);
                    heap_freetuple(new_tuple);
                    if (should_free) heap_freetuple(old_tuple);
                }
                result = PlanResult::kDone;
            }
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    UnregisterSnapshot(snapshot);
    index_close(index, NoLock);
    table_close(rel, NoLock);
    return result;
}

// MC002 unless the service exists and is active (read with the statement's snapshot rules; the
// row is not locked: deactivating a service does not wait for instance creations).
void CheckServiceActive(const Catalog& c, Datum service_id) {
    Relation rel = table_open(c.services, AccessShareLock);
    Relation index = index_open(c.services_pkey, AccessShareLock);
    Snapshot snapshot = StatementSnapshot();
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    bool found = FetchByUuid(rel, index, snapshot, service_id, slot);
    bool isnull = false;
    bool active = found && DatumGetBool(slot_getattr(slot, c.is_active, &isnull)) && !isnull;
    char* name = nullptr;
    if (found && !active) name = TextDatumGetCString(slot_getattr(slot, c.service_name, &isnull));
    ExecDropSingleTupleTableSlot(slot);
    UnregisterSnapshot(snapshot);
    index_close(index, NoLock);
    table_close(rel, NoLock);
    namespace state = mcp_platform::sqlstate;
    if (!found)
        ereport(ERROR, (errcode(mcp_platform::SqlStateCode(state::kServiceUnknown)),
                        errmsg("service %s does not exist", UuidText(service_id))));
    // Release 1.0 (no schema mcp_internal yet) reported an inactive service as MC002 too.
    const char* inactive_state = OidIsValid(get_namespace_oid("mcp_internal", true))
                                     ? state::kServiceInactive
                                     : state::kServiceUnknown;
    if (!active)
        ereport(ERROR, (errcode(mcp_platform::SqlStateCode(inactive_state)),
                        errmsg("service \"%s\" is inactive", name),
                        errdetail("An inactive service accepts no new or reactivated instances.")));
}

void RaiseLimitReached(Datum user_id, PlanResult result, const mcp_platform::PlanView& plan,
                       long active) {
    if (result == PlanResult::kNoPlan)
        ereport(ERROR, (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kPlanLimit)),
                        errmsg("plan limit reached: user %s has no plan", UuidText(user_id)),
                        errhint("Assign one with mcp.set_plan().")));
    char message[256], detail[256], hint[256];
    mcp_platform::FormatLimitError(plan, active, message, sizeof message, detail, sizeof detail,
                                   hint, sizeof hint);
    ereport(ERROR, (errcode(mcp_platform::SqlStateCode(mcp_platform::sqlstate::kPlanLimit)),
                    errmsg_internal("%s", message),
                    errdetail_internal("%s", detail), errhint("%s", hint)));
}

// Marks the user's counted rows past their expires_at (other than `instance_id`) 'expired',
// as the trigger function's owner; returns how many.
uint64 SweepExpired(Catalog* cat, Oid owner, Datum user_id, Datum instance_id) {
    Oid save_userid;
    int save_sec_context;
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
    int nest_level = mcp_platform::PinSearchPath();
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    Oid types[2] = {UUIDOID, UUIDOID};
    Datum values[2] = {user_id, instance_id};
    mcp_platform::ExecutePlan(
        mcp_platform::PrepareOnce(&cat->sweep_plan, cat->sweep_sql, 2, types), values,
        SPI_OK_UPDATE);
    uint64 swept = SPI_processed;
    if (SPI_finish() != SPI_OK_FINISH) elog(ERROR, "SPI_finish failed");
    mcp_platform::RestoreSearchPath(nest_level);
    SetUserIdAndSecContext(save_userid, save_sec_context);
    return swept;
}

}  // namespace

MCP_PG_FUNCTION_C(mcp_enforce_plan_limit) {
    using mcp_platform::CounterChange;
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("mcp_internal.enforce_plan_limit() must be called as a trigger")));
    TriggerData* trigdata = (TriggerData*)fcinfo->context;
    TriggerEvent event = trigdata->tg_event;
    if (!TRIGGER_FIRED_AFTER(event) || !TRIGGER_FIRED_FOR_ROW(event) ||
        TRIGGER_FIRED_BY_TRUNCATE(event))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                 errmsg("mcp_internal.enforce_plan_limit() must be fired AFTER INSERT, UPDATE or "
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
    const Oid owner = FunctionOwner(fcinfo->flinfo->fn_oid);
    Catalog& cat = CatalogFor(rel, owner);

    // An inactive service accepts no new instance and no (re)activation.
    if (inserted || change == CounterChange::kActivate || change == CounterChange::kRevive)
        CheckServiceActive(cat, service_id);

    mcp_platform::PlanView plan;
    long active = 0;
    if (change == CounterChange::kDeactivate) {
        (void)ChangePlanCounter(cat, user_id, -1, now, &plan, &active);  // no plan: user deleted
    } else if (change == CounterChange::kActivate || change == CounterChange::kRevive) {
        const int delta = change == CounterChange::kActivate ? 1 : 0;
        PlanResult result = ChangePlanCounter(cat, user_id, delta, now, &plan, &active);
        if (result == PlanResult::kNoRoom &&
            SweepExpired(&cat, owner, user_id, instance_id) > 0)
            result = ChangePlanCounter(cat, user_id, delta, now, &plan, &active);
        if (result != PlanResult::kDone) RaiseLimitReached(user_id, result, plan, active);
    }
    return PointerGetDatum(nullptr);
}

// mcp_internal.effective_limit(plan_type text, max_instances integer, expires_at timestamptz)
// → integer: the limit the trigger enforces for such a plan row now (NULL: unlimited), from
// the same rule (core/plan_rules).
MCP_PG_FUNCTION_C(mcp_effective_limit) {
    mcp_platform::PlanView plan;
    if (!PG_ARGISNULL(0)) {
        char* type = TextDatumGetCString(PG_GETARG_DATUM(0));
        plan.is_pro = strcmp(type, "pro") == 0;
    }
    plan.has_max_instances = !PG_ARGISNULL(1);
    plan.max_instances = plan.has_max_instances ? PG_GETARG_INT32(1) : 0;
    plan.plan_expired =
        !PG_ARGISNULL(2) && PG_GETARG_TIMESTAMPTZ(2) <= GetCurrentTransactionStartTimestamp();
    long limit = mcp_platform::EffectiveLimit(plan);
    if (limit < 0) PG_RETURN_NULL();
    PG_RETURN_INT32((int32)limit);
}
