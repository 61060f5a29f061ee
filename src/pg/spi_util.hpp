// SPI helpers for the plain-C entry points (MCP_PG_FUNCTION_C bodies): they raise Postgres
// errors directly, so they are called with no C++ object alive.
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

namespace mcp_platform {

// The plan of `sql` for the life of the backend: prepared and kept (SPI_keepplan) into *cache
// on first use, taken from it afterwards. Always the generic plan: the statements this is for
// run on hot paths, and a custom plan would be re-planned on every call. Call between
// SPI_connect and SPI_finish.
SPIPlanPtr PrepareOnce(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types);

// Runs a prepared plan (read-write, no row limit); raises unless SPI returns `expected`.
void ExecutePlan(SPIPlanPtr plan, Datum* values, int expected);

// Runs `sql` with its arguments (nulls: SPI's 'n'/' ' string, nullptr for none): its kept
// plan (PrepareOnce into *cache) on one node; under Citus (CitusLoaded) planned for these
// values each time instead, since Citus routes a statement to the tenant's shard only when it
// sees the distribution key's value at planning time (a cached generic plan fails with "could
// not create distributed plan"). Raises unless SPI returns `expected`.
void ExecuteStatement(SPIPlanPtr* cache, const char* sql, int nargs, Oid* types, Datum* values,
                      const char* nulls, int expected);

// Statements the extension runs with rights other than the caller's never resolve a name,
// operator or cast through the caller's search_path: PinSearchPath() sets search_path to
// pg_catalog, pg_temp at a new GUC nest level and returns it; RestoreSearchPath(level) puts
// the caller's back. An error in between is safe: transaction or subtransaction abort
// unwinds the nest level.
int PinSearchPath();
void RestoreSearchPath(int nest_level);

// The OID of the function schema.name(argtypes), looked up in the catalog without the schema
// USAGE check of a name lookup (no application role has USAGE on mcp_internal, yet the
// extension's C code calls its internal functions whoever runs it); InvalidOid when missing.
// Call it through fmgr (OidFunctionCall*): no EXECUTE check either.
Oid FindFunction(const char* schema, const char* name, int nargs, const Oid* argtypes);

// Whether Citus is loaded in this backend (one of its settings exists and has a value). Its
// planner refuses some statement forms the single-node paths use (a statement below the
// executor, an INSERT … SELECT from a reference table into a distributed one), so the C entry
// points take a statement form Citus routes to the tenant's shard instead. A test sets the
// setting's placeholder to run those forms on one node.
bool CitusLoaded();

}  // namespace mcp_platform
