// The tenant argument of the API functions under Citus. mcp.distribute() makes every mcp
// function with a `tenant` parameter a Citus distributed function, delegated by that argument
// (force_delegation): a call that passes its tenant runs on the worker holding the tenant's
// shards, through the backend's own connection, so it mixes with the backend's own statements
// in one transaction. Citus 13.2 crashes the backend (signal
// 11) when such a call's distribution argument is a NULL constant at plan time, and the
// parameter defaults to NULL (the transaction's tenant; a constant costs nothing on one node).
// This planner hook, which runs before Citus's (Citus must come first in
// shared_preload_libraries, so its hook is installed first and called last), gives every
// top-level call of such a function a tenant argument that is never a NULL constant:
//   - left out: mcp.current_user_id(), a function call (not a constant: the call is not
//     delegated and runs where it was sent, as before);
//   - passed as `e`: COALESCE(e, mcp.current_user_id()); a non-NULL constant still folds to
//     itself (the call is delegated), a NULL folds to the function call;
//   - a parameter without a value (a generic plan): left alone, Citus then asks for a custom
//     plan, which comes here again with the value.
// Without Citus loaded the hook does nothing.
#include "pg/module.hpp"
#include "pg/spi_util.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "nodes/primnodes.h"
#include "nodes/value.h"
#include "optimizer/planner.h"
#include "parser/parse_func.h"
#include "utils/syscache.h"
}
#include "pg/compat.hpp"

namespace {

planner_hook_type g_prev_planner = nullptr;

// The position of the `tenant` parameter among the input arguments of an mcp function, or -1.
int TenantArgument(Oid funcid) {
    Oid mcp = get_namespace_oid("mcp", true);
    if (!OidIsValid(mcp)) return -1;
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
    if (!HeapTupleIsValid(tuple)) return -1;
    int position = -1;
    if (reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->pronamespace == mcp) {
        bool isnull = false;
        Datum names = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proargnames, &isnull);
        if (!isnull) {
            Datum modes = SysCacheGetAttr(PROCOID, tuple, Anum_pg_proc_proargmodes, &isnull);
            char** input_names = nullptr;
            int n = get_func_input_arg_names(names, isnull ? PointerGetDatum(nullptr) : modes,
                                             &input_names);
            for (int i = 0; i < n; i++)
                if (input_names[i] != nullptr && strcmp(input_names[i], "tenant") == 0) position = i;
        }
    }
    ReleaseSysCache(tuple);
    return position;
}

// mcp.current_user_id(), or nullptr when it cannot be found.
Node* CurrentTenantCall() {
    Oid current = LookupFuncName(list_make2(makeString(pstrdup("mcp")),
                                            makeString(pstrdup("current_user_id"))),
                                 0, nullptr, true);
    if (!OidIsValid(current)) return nullptr;
    return reinterpret_cast<Node*>(
        makeFuncExpr(current, UUIDOID, NIL, InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
}

Node* OrCurrentTenant(Node* argument) {
    Node* current = CurrentTenantCall();
    if (current == nullptr) return argument;
    CoalesceExpr* coalesce = makeNode(CoalesceExpr);
    coalesce->coalescetype = UUIDOID;
    coalesce->coalescecollid = InvalidOid;
    coalesce->args = list_make2(argument, current);
    coalesce->location = -1;
    return reinterpret_cast<Node*>(coalesce);
}

void GuardCall(Node* node, ParamListInfo bound) {
    if (node == nullptr || !IsA(node, FuncExpr)) return;
    FuncExpr* call = reinterpret_cast<FuncExpr*>(node);
    int tenant = TenantArgument(call->funcid);
    if (tenant < 0) return;
    int position = 0;
    ListCell* cell = nullptr;
    foreach (cell, call->args) {
        Node** slot = reinterpret_cast<Node**>(&lfirst(cell));
        if (IsA(*slot, NamedArgExpr)) {
            NamedArgExpr* named = reinterpret_cast<NamedArgExpr*>(*slot);
            if (named->argnumber != tenant) continue;
            slot = reinterpret_cast<Node**>(&named->arg);
        } else if (position++ != tenant) {
            continue;
        }
        Node* argument = *slot;
        if (IsA(argument, Param) &&
            reinterpret_cast<Param*>(argument)->paramkind == PARAM_EXTERN && bound == nullptr)
            return;  // a generic plan: Citus asks for a custom one
        *slot = OrCurrentTenant(argument);
        return;
    }
    // left out: passed by name as mcp.current_user_id() (the planner fills in the defaults of
    // any parameter left out before it, as for a call in named notation)
    Node* current = CurrentTenantCall();
    if (current == nullptr) return;
    NamedArgExpr* named = makeNode(NamedArgExpr);
    named->arg = reinterpret_cast<Expr*>(current);
    named->name = pstrdup("tenant");
    named->argnumber = tenant;
    named->location = -1;
    call->args = lappend(call->args, named);
}

PlannedStmt* TenantRoutingPlanner(Query* parse, const char* query_string, int cursor_options,
                                  ParamListInfo bound) {
    if (parse->commandType == CMD_SELECT && mcp_platform::CitusLoaded()) {
        // the shapes Citus delegates: SELECT f(…) and SELECT … FROM f(…)
        ListCell* cell = nullptr;
        foreach (cell, parse->targetList)
            GuardCall(reinterpret_cast<Node*>(lfirst_node(TargetEntry, cell)->expr), bound);
        foreach (cell, parse->rtable) {
            RangeTblEntry* rte = lfirst_node(RangeTblEntry, cell);
            if (rte->rtekind != RTE_FUNCTION) continue;
            ListCell* f = nullptr;
            foreach (f, rte->functions) GuardCall(lfirst_node(RangeTblFunction, f)->funcexpr, bound);
        }
    }
    return g_prev_planner != nullptr
               ? g_prev_planner(parse, query_string, cursor_options, bound)
               : standard_planner(parse, query_string, cursor_options, bound);
}

}  // namespace

namespace mcp_platform {

void InstallTenantRouting() {
    g_prev_planner = planner_hook;
    planner_hook = TenantRoutingPlanner;
}

}  // namespace mcp_platform
