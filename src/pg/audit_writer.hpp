// Audit rows of a hot path written below the statement level: mcp.complete_refresh writes one
// row of mcp.token_audit_log per call, and a worker calls it once per credential, a hundred
// times in one statement. Written by an INSERT statement, each row paid the statement's
// executor start-up: the log's CHECK constraints and its trigger's WHEN clause parsed and
// compiled again (stringToNode), the partition routing set up, every index opened. Here one
// writer (executor state, routing, compiled constraints and WHEN clauses) serves every call
// made from one place of one statement, and is closed when that statement ends.
//
// Plain C (called from MCP_PG_FUNCTION_C bodies): raises Postgres errors directly.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace mcp_platform {

// One row of mcp.token_audit_log as the hot paths write it (no error): the columns not given
// take their defaults (audit_id, created_at), error_type and error_message are NULL.
struct AuditRow {
    Datum user_id;      // uuid
    Datum instance_id;  // uuid
    const char* operation;
    const char* status;
    const char* method;
    Datum metadata;  // jsonb
};

// Writes `row` through the writer cached for the calling function's call site (fcinfo's
// FmgrInfo: one place in one statement), as an INSERT would: routed to its partition, the
// constraints checked, the identity and defaults filled, every index maintained, the row
// triggers fired (the AFTER ones when this call returns). Returns false, having written
// nothing, where that path does not apply: under Citus (its planner must see the statement),
// when row-level security applies to the caller, when the log has statement-level INSERT
// triggers or a partition that is not a plain table, or during a nested call; the caller then
// runs its INSERT statement. Call it under the user the statement would run as (the function
// owner of a SECURITY DEFINER function).
bool WriteAuditRow(FunctionCallInfo fcinfo, const AuditRow& row);

}  // namespace mcp_platform
