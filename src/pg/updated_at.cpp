// mcp_internal.set_updated_at() (mcp.set_updated_at() in release 1.0; its messages use the 1.1
// name): the one BEFORE UPDATE trigger function of every table with an updated_at column.
// Trigger arguments name columns that may never change (e.g. 'user_id'
// on tenant tables); changing one is refused with 42501 — a row cannot move between tenants.
#include "pg/boundary.hpp"

extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "fmgr.h"
}

MCP_PG_FUNCTION_C(mcp_set_updated_at) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("mcp_internal.set_updated_at() must be called as a trigger")));
    TriggerData* trigdata = (TriggerData*)fcinfo->context;
    if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
        !TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                 errmsg("mcp_internal.set_updated_at() must be fired BEFORE UPDATE FOR EACH ROW")));

    Relation rel = trigdata->tg_relation;
    TupleDesc tupdesc = RelationGetDescr(rel);
    HeapTuple oldtuple = trigdata->tg_trigtuple;
    HeapTuple newtuple = trigdata->tg_newtuple;

    for (int i = 0; i < trigdata->tg_trigger->tgnargs; i++) {
        const char* colname = trigdata->tg_trigger->tgargs[i];
        int attnum = SPI_fnumber(tupdesc, colname);
        if (attnum <= 0)
            ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                            errmsg("column \"%s\" of relation \"%s\" does not exist", colname,
                                   RelationGetRelationName(rel))));
        Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
        bool old_null, new_null;
        Datum old_value = heap_getattr(oldtuple, attnum, tupdesc, &old_null);
        Datum new_value = heap_getattr(newtuple, attnum, tupdesc, &new_null);
        if (old_null != new_null ||
            (!old_null && !datumIsEqual(old_value, new_value, att->attbyval, att->attlen)))
            ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                            errmsg("column \"%s\" of relation \"%s\" cannot be changed", colname,
                                   RelationGetRelationName(rel)),
                            errdetail("A row cannot move to another tenant.")));
    }

    int attnum = SPI_fnumber(tupdesc, "updated_at");
    if (attnum <= 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("relation \"%s\" has no column \"updated_at\"",
                               RelationGetRelationName(rel))));
    Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    bool isnull = false;
    newtuple = heap_modify_tuple_by_cols(newtuple, tupdesc, 1, &attnum, &now, &isnull);
    return PointerGetDatum(newtuple);
}
