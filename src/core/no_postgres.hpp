// Every core header includes this first: the core must compile without Postgres, so that it
// can be unit-tested and fuzzed on its own and never meets Postgres' longjmp-based errors.
#pragma once

#ifdef POSTGRES_H
static_assert(false, "src/core must not include Postgres headers (include core headers before postgres.h)");
#endif
