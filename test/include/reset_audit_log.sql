-- Included by the audit tests at their end (\i): no audit rows, no day partitions left.
TRUNCATE mcp.token_audit_log;
DO $$
DECLARE p regclass;
BEGIN
    FOR p IN SELECT inhrelid::regclass FROM pg_inherits
              WHERE inhparent = 'mcp.token_audit_log'::regclass
                AND inhrelid <> 'mcp.token_audit_log_default'::regclass LOOP
        EXECUTE format('DROP TABLE %s', p);
    END LOOP;
END
$$;
