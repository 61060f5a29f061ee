# Expands `#include "file"` lines (file relative to the including file's directory) into the
# file's contents; every other line is copied. Used by the Makefile to build the install and
# upgrade scripts from sql/src.
function dirname(path) { sub(/[^\/]*$/, "", path); return path }
/^#include "[^"]+"[ \t]*$/ {
    name = $0
    sub(/^#include "/, "", name); sub(/"[ \t]*$/, "", name)
    file = dirname(FILENAME) name
    while ((getline line < file) > 0) print line
    if (close(file) != 0) { print "sql_include.awk: cannot read " file > "/dev/stderr"; exit 1 }
    next
}
{ print }
