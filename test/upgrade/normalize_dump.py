"""Normalises `pg_dump --schema-only --binary-upgrade` output for comparison: splits it into
its TOC entries, drops the entries of the audit log's day partitions (they follow the data,
not the schema), and removes what depends only on OIDs, dump ids and transaction ids."""
import re
import sys

text = sys.stdin.read()
text = re.sub(r"(?m)^\\(un)?restrict .*\n", "", text)
# TOC entries start with a "--\n-- Name: …" (or "-- Data for Name") comment block
entries = re.split(r"\n(?=--\n-- (?:Name|Data for Name): )", text)
out = []
for entry in entries:
    if re.search(r"token_audit_log_p[0-9]{8}", entry):
        continue
    entry = re.sub(r"(?m)^-- (Name|TOC entry|Dependencies|Dumped (from|by)).*\n", "", entry)
    entry = re.sub(r"(?m)^SELECT pg_catalog\.binary_upgrade_set_[a-z_]+\(.*\);\n", "", entry)
    # a column added by the upgrade with a constant default keeps that default for the rows
    # that predate it as a "missing value" (no table rewrite): data of those rows, not schema
    # (check_values.sql reads them back)
    entry = re.sub(r"(?m)^-- set missing value\.\n", "", entry)
    entry = re.sub(r"UPDATE pg_catalog\.pg_class\nSET relfrozenxid[^;]*;\n", "", entry)
    entry = re.sub(r"binary_upgrade_create_empty_extension\([^;]*\);", "binary_upgrade_create_empty_extension(...);", entry)
    # sequence positions are data
    entry = re.sub(r"(?m)^SELECT pg_catalog\.setval\(.*\);\n", "", entry)
    out.append(entry)
lines = [l for l in "\n".join(out).split("\n") if l.strip() not in ("", "--")]
sys.stdout.write("\n".join(lines) + "\n")
