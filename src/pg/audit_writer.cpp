// Audit rows of a hot path written below the statement level (see audit_writer.hpp).
//
// What an INSERT INTO mcp.token_audit_log statement does, done with the executor's own
// routines, as logical replication's apply worker does for each replicated row: the row is
// routed to its partition (ExecFindPartition), then ExecSimpleRelationInsert checks the NOT
// NULL and CHECK constraints and the partition constraint, runs the BEFORE ROW triggers,
// stores the row, adds its index entries (unique ones checked) and queues the AFTER ROW
// triggers, which AfterTriggerEndQuery fires before the call returns, as at the end of the
// statement. The defaults of the columns not given (the identity audit_id, created_at) are
// the table's own, compiled from the catalog (build_column_default). What differs from the
// statement is only what is kept between calls: the executor state with its routing, the
// compiled constraints, partition constraint and trigger WHEN clauses.
//
// Lifetime. A writer serves one call site (the FmgrInfo of one function call in one
// statement) within one transaction, and is closed when that statement's executor state goes
// (a reset callback on the FmgrInfo's context), at the latest before commit. Its memory is in
// the transaction's context, and everything it holds or does runs under a resource owner of
// its own (a child of the transaction's): the relations, their locks and the slots it keeps,
// and the row triggers it fires. So it does not depend on the portal or subtransaction that
// first called it, and what a write that failed held is released with the writer: a
// subtransaction that aborts during a write, or that made the writer, releases the writer's
// owner (its locks stay with the transaction, as an INSERT's would). It is not used again (a
// new one is made) after a relcache invalidation of the log or of a partition it wrote to
// (DDL: a partition attached or created, a constraint or trigger changed).
//
// What a statement would show and this does not: executor hooks (pg_stat_statements counts no
// INSERT for these rows; an audit extension that logs statements logs none). And while a
// writer is open its relations are in use: DDL on the log in the same statement, or, where the
// call site outlives its statement (a PL/pgSQL assignment or condition, whose expression state
// lives for the transaction), later in the same transaction, is refused as on a table in use.
#include "pg/audit_writer.hpp"

#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/rls.h"
}
#include "pg/compat.hpp"

namespace {

// Partitions a writer routes to (today's, at a day boundary two): more and it is not reused.
constexpr int kMaxPartitions = 4;

struct Writer {
    Writer* next;  // the transaction's open writers
    ResourceOwner owner;
    bool open;
    bool in_use;
    bool broken;  // not to be used again (invalidated, or an error during a write)
    SubTransactionId created_in;
    Oid relid;
    Relation rel;
    EState* estate;
    ModifyTableState* mtstate;
    ResultRelInfo* root;
    PartitionTupleRouting* proute;
    TupleTableSlot* slot;     // a row of the log's type
    ExprState** defaults;     // by attribute number - 1: the default of a column not given
    AttrNumber user_id, instance_id, operation, status, method, metadata;
    int npartitions;
    Oid partition_oid[kMaxPartitions];
    TupleTableSlot* partition_slot[kMaxPartitions];  // the partition's row type, when it differs
};

// fn_extra of a call site: its writer in the transaction lxid.
struct Site {
    LocalTransactionId lxid;
    Writer* writer;
    MemoryContextCallback ended;
};

Writer* writers = nullptr;  // this transaction's (in TopTransactionContext)
bool callbacks_registered = false;

void Unlink(Writer* w) {
    for (Writer** link = &writers; *link != nullptr; link = &(*link)->next)
        if (*link == w) {
            *link = w->next;
            break;
        }
}

// Releases and deletes a resource owner of a writer. Its locks go to the transaction either
// way (an INSERT's locks are held to the end of the transaction that wrote); the rest is
// released quietly after an error (`clean` false: a write that failed may have left buffer
// pins or slots behind), with the usual leak warnings otherwise.
void ReleaseOwner(ResourceOwner owner, bool clean) {
    ResourceOwnerRelease(owner, RESOURCE_RELEASE_BEFORE_LOCKS, clean, false);
    ResourceOwnerRelease(owner, RESOURCE_RELEASE_LOCKS, true, false);
    ResourceOwnerRelease(owner, RESOURCE_RELEASE_AFTER_LOCKS, clean, false);
    ResourceOwnerDelete(owner);
}

// Closes a writer (the struct stays, in the transaction's memory: a call site may still point
// to it).
void CloseWriter(Writer* w) {
    if (!w->open) return;
    w->open = false;
    Unlink(w);
    ResourceOwner saved = CurrentResourceOwner;
    CurrentResourceOwner = w->owner;
    // the relations trigger firing opened (ExecGetTriggerResultRel), then the partitions
    ExecCloseResultRelations(w->estate);
    ExecCleanupTupleRouting(w->mtstate, w->proute);
    ExecResetTupleTable(w->estate->es_tupleTable, false);
    table_close(w->rel, NoLock);
    FreeExecutorState(w->estate);
    CurrentResourceOwner = saved;
    ReleaseOwner(w->owner, true);
}

// During a subtransaction's abort: the writer's owner releases whatever it held; its memory
// goes with the transaction.
void AbandonWriter(Writer* w) {
    w->in_use = false;
    if (!w->open) return;
    w->open = false;
    Unlink(w);
    ReleaseOwner(w->owner, false);
}

void OnXact(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_PRE_COMMIT:
        case XACT_EVENT_PARALLEL_PRE_COMMIT:
        case XACT_EVENT_PRE_PREPARE:
            while (writers != nullptr) CloseWriter(writers);
            break;
        default:
            // commit or prepare (closed already), or abort: the transaction's resource owner
            // releases the writers' owners, its memory goes
            for (Writer* w = writers; w != nullptr; w = w->next) w->open = false;
            writers = nullptr;
            break;
    }
}

void OnSubXact(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
    if (event != SUBXACT_EVENT_ABORT_SUB) return;
    Writer* next = nullptr;
    for (Writer* w = writers; w != nullptr; w = next) {
        next = w->next;
        // in the middle of a write, or made in the aborted subtransaction (or one of its
        // children, whose call sites are gone)
        if (w->in_use || w->created_in >= subid) AbandonWriter(w);
    }
}

void OnRelcache(Datum, Oid relid) {
    for (Writer* w = writers; w != nullptr; w = w->next) {
        if (!w->open || w->broken) continue;
        if (relid == InvalidOid || relid == w->relid) w->broken = true;
        for (int i = 0; i < w->npartitions; i++)
            if (w->partition_oid[i] == relid) w->broken = true;
    }
}

// The statement that called through the site ended (its executor state is being freed).
void SiteEnded(void* arg) {
    Site* site = static_cast<Site*>(arg);
    if (site->writer != nullptr && site->lxid == mcp_platform::pg_compat::ProcLocalXid(MyProc) &&
        IsTransactionState())
        CloseWriter(site->writer);
    site->writer = nullptr;
}

AttrNumber Column(TupleDesc desc, const char* name) {
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0) return att->attnum;
    }
    elog(ERROR, "column \"%s\" of mcp.token_audit_log does not exist", name);
    pg_unreachable();
}

// A writer for mcp.token_audit_log, or nullptr where the statement must be run instead.
Writer* CreateWriter() {
    Oid ns = get_namespace_oid("mcp", true);
    Oid relid = OidIsValid(ns) ? get_relname_relid("token_audit_log", ns) : InvalidOid;
    if (!OidIsValid(relid) || pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK ||
        check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
        return nullptr;  // the statement raises what it must

    MemoryContext saved_context = MemoryContextSwitchTo(TopTransactionContext);
    ResourceOwner saved_owner = CurrentResourceOwner;
    ResourceOwner owner = ResourceOwnerCreate(TopTransactionResourceOwner, "mcp_platform audit writer");
    CurrentResourceOwner = owner;
    Relation rel = table_open(relid, RowExclusiveLock);
    TriggerDesc* triggers = rel->trigdesc;
    if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE ||
        (triggers != nullptr &&
         (triggers->trig_insert_before_statement || triggers->trig_insert_after_statement ||
          triggers->trig_insert_new_table || triggers->trig_insert_instead_row))) {
        table_close(rel, NoLock);
        CurrentResourceOwner = saved_owner;
        ReleaseOwner(owner, true);
        MemoryContextSwitchTo(saved_context);
        return nullptr;
    }

    Writer* w = static_cast<Writer*>(palloc0(sizeof(Writer)));
    w->owner = owner;
    w->relid = relid;
    w->rel = rel;
    w->created_in = GetCurrentSubTransactionId();
    w->estate = CreateExecutorState();
    MemoryContextSwitchTo(w->estate->es_query_cxt);
    TupleDesc desc = RelationGetDescr(rel);
    w->user_id = Column(desc, "user_id");
    w->instance_id = Column(desc, "instance_id");
    w->operation = Column(desc, "operation");
    w->status = Column(desc, "status");
    w->method = Column(desc, "method");
    w->metadata = Column(desc, "metadata");
    const AttrNumber given[] = {w->user_id, w->instance_id, w->operation,
                                w->status,  w->method,      w->metadata};
    Bitmapset* inserted = nullptr;
    for (AttrNumber attnum : given)
        inserted = bms_add_member(inserted, attnum - FirstLowInvalidHeapAttributeNumber);
    mcp_platform::pg_compat::InitInsertRangeTable(w->estate, rel, inserted);
    w->root = makeNode(ResultRelInfo);
    InitResultRelInfo(w->root, rel, 1, nullptr, 0);
    w->estate->es_opened_result_relations = lappend(w->estate->es_opened_result_relations, w->root);
    w->mtstate = makeNode(ModifyTableState);
    w->mtstate->ps.plan = nullptr;
    w->mtstate->ps.state = w->estate;
    w->mtstate->operation = CMD_INSERT;
    w->mtstate->resultRelInfo = w->root;
    w->proute = ExecSetupPartitionTupleRouting(w->estate, rel);
    w->slot = ExecInitExtraTupleSlot(w->estate, desc, &TTSOpsVirtual);
    w->defaults = static_cast<ExprState**>(palloc0(desc->natts * sizeof(ExprState*)));
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        bool is_given = false;
        for (AttrNumber attnum : given) is_given = is_given || attnum == att->attnum;
        // generated columns are computed by ExecSimpleRelationInsert
        if (att->attisdropped || att->attgenerated || is_given) continue;
        Node* expr = build_column_default(rel, att->attnum);
        if (expr != nullptr)
            w->defaults[i] = ExecInitExpr(expression_planner(reinterpret_cast<Expr*>(expr)), nullptr);
    }
    w->open = true;
    w->next = writers;
    writers = w;
    CurrentResourceOwner = saved_owner;
    MemoryContextSwitchTo(saved_context);
    return w;
}

}  // namespace

namespace mcp_platform {

bool WriteAuditRow(FunctionCallInfo fcinfo, const AuditRow& row) {
    if (CitusLoaded()) return false;
    if (!callbacks_registered) {
        RegisterXactCallback(OnXact, nullptr);
        RegisterSubXactCallback(OnSubXact, nullptr);
        CacheRegisterRelcacheCallback(OnRelcache, (Datum)0);
        callbacks_registered = true;
    }
    // DDL committed meanwhile (a partition attached) invalidates the writer now, not later
    AcceptInvalidationMessages();

    FmgrInfo* flinfo = fcinfo->flinfo;
    Site* site = static_cast<Site*>(flinfo->fn_extra);
    if (site == nullptr) {
        site = static_cast<Site*>(MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(Site)));
        site->ended.func = SiteEnded;
        site->ended.arg = site;
        MemoryContextRegisterResetCallback(flinfo->fn_mcxt, &site->ended);
        flinfo->fn_extra = site;
    }
    LocalTransactionId lxid = pg_compat::ProcLocalXid(MyProc);
    Writer* w = site->lxid == lxid ? site->writer : nullptr;
    if (w != nullptr && w->open && w->in_use) return false;  // a nested call (from a trigger)
    if (w == nullptr || !w->open || w->broken) {
        if (w != nullptr) CloseWriter(w);
        site->writer = nullptr;
        w = CreateWriter();
        if (w == nullptr) return false;
        site->lxid = lxid;
        site->writer = w;
    }

    w->in_use = true;
    // everything the write opens, pins or fires is the writer's resource owner's
    ResourceOwner saved_owner = CurrentResourceOwner;
    CurrentResourceOwner = w->owner;
    EState* estate = w->estate;
    ExprContext* econtext = GetPerTupleExprContext(estate);
    MemoryContext saved_context = MemoryContextSwitchTo(GetPerTupleMemoryContext(estate));
    TupleTableSlot* slot = w->slot;
    ExecClearTuple(slot);
    int natts = slot->tts_tupleDescriptor->natts;
    for (int i = 0; i < natts; i++) {
        slot->tts_values[i] = (Datum)0;
        slot->tts_isnull[i] = true;
        if (w->defaults[i] != nullptr)
            slot->tts_values[i] = ExecEvalExpr(w->defaults[i], econtext, &slot->tts_isnull[i]);
    }
    const struct {
        AttrNumber attnum;
        Datum value;
    } given[] = {{w->user_id, row.user_id},
                 {w->instance_id, row.instance_id},
                 {w->operation, CStringGetTextDatum(row.operation)},
                 {w->status, CStringGetTextDatum(row.status)},
                 {w->method, CStringGetTextDatum(row.method)},
                 {w->metadata, row.metadata}};
    for (const auto& column : given) {
        slot->tts_values[column.attnum - 1] = column.value;
        slot->tts_isnull[column.attnum - 1] = false;
    }
    ExecStoreVirtualTuple(slot);

    ResultRelInfo* partition = ExecFindPartition(w->mtstate, w->root, w->proute, slot, estate);
    Relation partition_rel = partition->ri_RelationDesc;
    int p = 0;
    while (p < w->npartitions && w->partition_oid[p] != RelationGetRelid(partition_rel)) p++;
    if (p == w->npartitions) {
        if (partition_rel->rd_rel->relkind != RELKIND_RELATION || p == kMaxPartitions) {
            // a foreign table, or more partitions than tracked: the statement does it
            CurrentResourceOwner = saved_owner;
            w->broken = true;
            w->in_use = false;
            MemoryContextSwitchTo(saved_context);
            ResetPerTupleExprContext(estate);
            return false;
        }
        w->partition_oid[p] = RelationGetRelid(partition_rel);
        w->partition_slot[p] = nullptr;
        if (pg_compat::RootToPartitionMap(partition, estate) != nullptr) {
            MemoryContext query_context = MemoryContextSwitchTo(estate->es_query_cxt);
            w->partition_slot[p] = table_slot_create(partition_rel, &estate->es_tupleTable);
            MemoryContextSwitchTo(query_context);
        }
        w->npartitions++;
    }
    TupleTableSlot* to_insert = slot;
    if (w->partition_slot[p] != nullptr) {
        TupleConversionMap* map = pg_compat::RootToPartitionMap(partition, estate);
        to_insert = execute_attr_map_slot(map->attrMap, slot, w->partition_slot[p]);
    }

    estate->es_output_cid = GetCurrentCommandId(true);
    AfterTriggerBeginQuery();
    ExecSimpleRelationInsert(partition, estate, to_insert);
    AfterTriggerEndQuery(estate);
    CurrentResourceOwner = saved_owner;

    MemoryContextSwitchTo(saved_context);
    ResetPerTupleExprContext(estate);
    w->in_use = false;
    return true;
}

}  // namespace mcp_platform
