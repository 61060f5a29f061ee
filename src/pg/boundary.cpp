// Raising errors captured at the C++/Postgres boundary (see boundary.hpp).
#include "pg/boundary.hpp"

extern "C" {
#include "utils/elog.h"
}

namespace mcp_platform::boundary_detail {

void RaisePending(const PendingError& pending) {
    switch (pending.kind) {
        case PendingError::kNone:
            return;
        case PendingError::kSql: {
            const char* s = pending.sqlstate;
            int code = SqlStateCode(s);
            ereport(ERROR, (errcode(code), errmsg_internal("%s", pending.message),
                            pending.detail[0] ? errdetail_internal("%s", pending.detail) : 0,
                            pending.hint[0] ? errhint("%s", pending.hint) : 0));
            break;
        }
        case PendingError::kPostgres:
            ReThrowError(pending.edata);
            break;
        case PendingError::kOutOfMemory:
            ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
            break;
        case PendingError::kUnknown:
            ereport(ERROR,
                    (errcode(ERRCODE_INTERNAL_ERROR), errmsg("internal error in mcp_platform"),
                     pending.message[0] ? errdetail_internal("%s", pending.message) : 0));
            break;
        case PendingError::kErrorStackLeft:
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("internal error in mcp_platform: the Postgres error stack was "
                                   "left changed"),
                            errdetail("A C function of the extension left PG_exception_stack or "
                                      "error_context_stack changed (a return or an exception out "
                                      "of PG_TRY); both were put back, and this error replaces "
                                      "its result.")));
            break;
    }
}

}  // namespace mcp_platform::boundary_detail
