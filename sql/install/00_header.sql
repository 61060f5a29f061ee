-- mcp_platform 1.0 install script, assembled by the Makefile from sql/install/NN_*.sql.
\echo Use "CREATE EXTENSION mcp_platform" to load this file. \quit
