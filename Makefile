# mcp_platform — PGXS build. See README.md ("Development") for the targets.
EXTENSION   = mcp_platform
MODULE_big  = mcp_platform

CORE_SRCS   = $(sort $(wildcard src/core/*.cpp))
GLUE_SRCS   = $(sort $(wildcard src/pg/*.cpp))
OBJS        = $(CORE_SRCS:.cpp=.o) $(GLUE_SRCS:.cpp=.o)

# sql/mcp_platform--1.0.sql is the released 1.0 install script (frozen). The current
# version's install script and the upgrade scripts are generated from sql/src: a *.sql.in file
# lists the sources, and each `#include "file"` line is replaced by that file.
SQL_SOURCES = $(wildcard sql/src/*.sql)
DATA_built  = sql/$(EXTENSION)--1.1.sql sql/$(EXTENSION)--1.0--1.1.sql
DATA        = sql/$(EXTENSION)--1.0.sql

# the extension's version (default_version of the control file): the module magic block of
# PostgreSQL 18 records it (src/pg/compat.hpp), and META.json states it
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
PG_CPPFLAGS = -Isrc -DMCP_PLATFORM_VERSION='"$(EXTVERSION)"'
PG_CXXFLAGS = -std=c++17 -Wno-register -Wextra -Wno-unused-parameter
# header dependencies: an object is rebuilt when a header it includes changes
PG_CXXFLAGS += -MMD -MP
EXTRA_CLEAN = $(OBJS:.o=.d)
ifdef WERROR
PG_CXXFLAGS += -Werror
endif
SHLIB_LINK  = -lcrypto -lstdc++

REGRESS        = $(sort $(basename $(notdir $(wildcard test/sql/*.sql))))
REGRESS_OPTS   = --inputdir=test --load-extension=$(EXTENSION)
ISOLATION      = $(sort $(basename $(notdir $(wildcard test/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test --outputdir=. --load-extension=$(EXTENSION)
# TAP tests (PostgreSQL::Test::Cluster, each starts servers of its own): test/t/*.pl, with the
# shared setup in test/perl. Run as a user that can run initdb (never root).
TAP_TESTS      = 1
PROVE_TESTS    = test/t/*.pl

override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
-include $(OBJS:.o=.d)
PG_PROVE_FLAGS += -I $(srcdir)/test/perl

# The objects are rebuilt when the PostgreSQL they are built against changes (another
# PG_CONFIG in the same checkout): a stamp named after its version and server headers; when it
# is missing, the objects of the other version go. (Done as the Makefile is read: PGXS marks
# every target .SECONDARY, so a missing stamp as a prerequisite would not rebuild anything.)
PG_STAMP := build/pg-stamp-$(shell echo '$(VERSION) $(includedir_server)' | md5sum | cut -c1-12)
ifeq ($(wildcard $(PG_STAMP)),)
$(shell rm -f $(OBJS) $(OBJS:.o=.d) $(shlib) build/pg-stamp-*; mkdir -p build; touch $(PG_STAMP))
endif
EXTRA_CLEAN += build/pg-stamp-*

# PGXS runs the TAP tests as part of installcheck; this target runs only them.
prove_installcheck:
	$(prove_installcheck)

sql/$(EXTENSION)--%.sql: sql/src/$(EXTENSION)--%.sql.in $(SQL_SOURCES)
	awk -f scripts/sql_include.awk $< > $@
sql/$(EXTENSION)--1.1.sql: sql/src/$(EXTENSION).sql.in $(SQL_SOURCES)
	awk -f scripts/sql_include.awk $< > $@

# ---- pure C++ core: unit tests and fuzzers (no server needed) ----
GTEST_LIBS  = -lgtest -lgtest_main -lpthread
UNIT_SRCS   = $(sort $(wildcard test/unit/*.cpp))
CORE_CXXFLAGS = -std=c++17 -O1 -g -Wall -Wextra -Werror -Isrc

build/unit_tests: $(UNIT_SRCS) $(CORE_SRCS) $(wildcard src/core/*.hpp)
	@mkdir -p build
	$(CXX) $(CORE_CXXFLAGS) -o $@ $(UNIT_SRCS) $(CORE_SRCS) $(GTEST_LIBS) -lcrypto

unittest: build/unit_tests
	build/unit_tests

FUZZ_SRCS   = $(sort $(wildcard test/fuzz/*.cpp))
FUZZ_BINS   = $(patsubst test/fuzz/%.cpp,build/fuzz_%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 30

build/fuzz_%: test/fuzz/%.cpp $(CORE_SRCS) $(wildcard src/core/*.hpp)
	@mkdir -p build
	clang++ -std=c++17 -g -O1 -Isrc -fsanitize=fuzzer,address,undefined -o $@ $< $(CORE_SRCS) -lcrypto

fuzz: $(FUZZ_BINS)
	@set -e; for b in $(FUZZ_BINS); do \
	  name=$${b#build/fuzz_}; corpus=build/corpus_$$name; \
	  rm -rf $$corpus; mkdir -p $$corpus; cp test/fuzz/corpus/$$name/* $$corpus/ 2>/dev/null || true; \
	  echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	  $$b -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus 2>build/fuzz_$$name.log || { tail -50 build/fuzz_$$name.log; exit 1; }; \
	  grep -E 'stat::number_of_executed_units' build/fuzz_$$name.log; \
	done

clean: clean-core
clean-core:
	rm -rf build output_iso

.PHONY: unittest fuzz clean-core prove_installcheck deb

# ---- Debian packages (debian/, pg_buildext) ----
# postgresql-NN-mcp-platform for every PostgreSQL major whose postgresql-server-dev-NN is
# installed, built in a copy of the tree (build/deb/src) and written to build/deb/. Needs
# postgresql-server-dev-all, debhelper, dpkg-dev and build-essential; scripts/deb_test.sh
# installs them and tests the package on a fresh root.
deb:
	rm -rf build/deb
	mkdir -p build/deb/src
	tar --exclude=./.git --exclude=./build --exclude=./examples/node/node_modules \
	    --exclude='*.o' --exclude='*.d' --exclude='*.so' --exclude='*.bc' \
	    --exclude=./results --exclude=./output_iso --exclude='./tmp_check*' --exclude='./log' \
	    -cf - . | tar -C build/deb/src -xf -
	cd build/deb/src && PG_SUPPORTED_VERSIONS=installed pg_buildext updatecontrol && \
	    dpkg-buildpackage --build=binary --no-sign
	rm -rf build/deb/src
	@ls build/deb/*.deb
