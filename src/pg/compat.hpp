// Every difference between the PostgreSQL majors the extension builds against (15 to 18), in
// one place, behind PG_VERSION_NUM. The rest of src/pg calls the wrappers below and never
// tests the version itself. Include it after the Postgres headers of the file.
#pragma once

extern "C" {
#include "postgres.h"
#if PG_VERSION_NUM >= 160000
#include "varatt.h"  // VARDATA, VARSIZE, SET_VARSIZE: split off from postgres.h in 16
#endif
#include "access/genam.h"
#include "access/heapam.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
}

#if PG_VERSION_NUM < 150000
#error "mcp_platform needs PostgreSQL 15 or later"
#endif

namespace mcp_platform::pg_compat {

// The local transaction id of a backend (PGPROC.lxid until 16, PGPROC.vxid.lxid from 17).
inline LocalTransactionId ProcLocalXid(const PGPROC* proc) {
#if PG_VERSION_NUM >= 170000
    return proc->vxid.lxid;
#else
    return proc->lxid;
#endif
}

// The GUC table as an array of *count entries (16 keeps it in a hash table: the array is a
// palloc'd copy, and GetNumConfigOptions is gone).
inline config_generic** GucVariables(int* count) {
#if PG_VERSION_NUM >= 160000
    return get_guc_variables(count);
#else
    *count = GetNumConfigOptions();
    return get_guc_variables();
#endif
}

// index_beginscan without instrumentation (18 added the IndexScanInstrumentation argument).
inline IndexScanDesc IndexBeginScan(Relation heap, Relation index, Snapshot snapshot, int nkeys,
                                    int norderbys) {
#if PG_VERSION_NUM >= 180000
    return index_beginscan(heap, index, snapshot, nullptr, nkeys, norderbys);
#else
    return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

// Which index entries a new tuple version needs after simple_heap_update.
enum class IndexUpdate { kNone, kAll, kSummarizingOnly };

// simple_heap_update, returning which index entries the new version needs. 16 reports it
// (TU_UpdateIndexes: a HOT update may still need entries in summarizing indexes such as
// BRIN); before 16 a heap-only tuple needs none and any other needs all.
inline IndexUpdate SimpleHeapUpdate(Relation rel, ItemPointer otid, HeapTuple tuple) {
#if PG_VERSION_NUM >= 160000
    TU_UpdateIndexes update_indexes = TU_None;
    simple_heap_update(rel, otid, tuple, &update_indexes);
    switch (update_indexes) {
        case TU_All:
            return IndexUpdate::kAll;
        case TU_Summarizing:
            return IndexUpdate::kSummarizingOnly;
        case TU_None:
            break;
    }
    return IndexUpdate::kNone;
#else
    simple_heap_update(rel, otid, tuple);
    return HeapTupleIsHeapOnly(tuple) ? IndexUpdate::kNone : IndexUpdate::kAll;
#endif
}

// ExecInsertIndexTuples for a plain insert of the slot's tuple (no conflict handling);
// only_summarizing (16+) limits it to summarizing indexes.
inline void InsertIndexTuples(ResultRelInfo* result_rel, TupleTableSlot* slot, EState* estate,
                              bool only_summarizing) {
#if PG_VERSION_NUM >= 160000
    (void)ExecInsertIndexTuples(result_rel, slot, estate, false, false, nullptr, NIL,
                                only_summarizing);
#else
    (void)only_summarizing;  // no summarizing-only HOT updates before 16
    (void)ExecInsertIndexTuples(result_rel, slot, estate, false, false, nullptr, NIL);
#endif
}

// The map that converts a row of a partitioned table's type to its partition's, or nullptr
// when none is needed (15 keeps it in the ResultRelInfo; 16 builds it on first request).
inline TupleConversionMap* RootToPartitionMap(ResultRelInfo* partition, EState* estate) {
#if PG_VERSION_NUM >= 160000
    return ExecGetRootToChildMap(partition, estate);
#else
    (void)estate;
    return partition->ri_RootToPartitionMap;
#endif
}

// An executor range table of one relation, the target of an INSERT of the columns
// `inserted_cols` (16 moved the permission fields to RTEPermissionInfo; 18 added the set of
// unpruned relations).
inline void InitInsertRangeTable(EState* estate, Relation rel, Bitmapset* inserted_cols) {
    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = RelationGetRelid(rel);
    rte->relkind = rel->rd_rel->relkind;
    rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 160000
    List* perminfos = NIL;
    RTEPermissionInfo* perminfo = addRTEPermissionInfo(&perminfos, rte);
    perminfo->requiredPerms = ACL_INSERT;
    perminfo->insertedCols = inserted_cols;
#if PG_VERSION_NUM >= 180000
    ExecInitRangeTable(estate, list_make1(rte), perminfos, bms_make_singleton(1));
#else
    ExecInitRangeTable(estate, list_make1(rte), perminfos);
#endif
#else
    rte->requiredPerms = ACL_INSERT;
    rte->insertedCols = inserted_cols;
    ExecInitRangeTable(estate, list_make1(rte));
#endif
}

}  // namespace mcp_platform::pg_compat

// The module magic block: 18 records the library's name and version in it (and warns on the
// old form under -Wextra). Used once, in module.cpp; the Makefile defines MCP_PLATFORM_VERSION
// (default_version of the control file).
#if PG_VERSION_NUM >= 180000
#define MCP_PG_MODULE_MAGIC \
    PG_MODULE_MAGIC_EXT(.name = "mcp_platform", .version = MCP_PLATFORM_VERSION)
#else
#define MCP_PG_MODULE_MAGIC PG_MODULE_MAGIC
#endif
