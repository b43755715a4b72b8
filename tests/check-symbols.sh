#!/bin/sh
# The shared library exports exactly the symbols listed in whr.sym, and
# every function the public headers declare is among them.
# Usage: check-symbols.sh LIBWHR.so WHR.SYM INCLUDE_DIR GENERATED_INCLUDE_DIR
set -eu
lib=$1 sym=$2 inc=$3 gen=$4
[ -f "$lib" ] || { echo "missing library $lib" >&2; exit 1; }
[ -f "$sym" ] || { echo "missing symbol file $sym" >&2; exit 1; }
[ -f "$gen/version.h" ] || { echo "missing generated $gen/version.h" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' \
	| sed 's/@.*//' | sort -u > "$tmp/exported"
grep -E '^\s+whr_[a-z0-9_]+;' "$sym" | tr -d ' \t;' | sort -u > "$tmp/listed"
# Function-like macros (whr_log) are not symbols.
grep -hoE '^#define whr_[a-z0-9_]+\(' "$inc"/*.h "$gen"/*.h | sed 's/#define //; s/(//' \
	| sort -u > "$tmp/macros"
grep -hoE '\bwhr_[a-z0-9_]+\(' "$inc"/*.h "$gen"/*.h | tr -d '(' | sort -u \
	| comm -23 - "$tmp/macros" > "$tmp/declared"

[ -s "$tmp/exported" ] || { echo "no symbols exported from $lib" >&2; exit 1; }
[ -s "$tmp/declared" ] || { echo "no functions declared in $inc" >&2; exit 1; }
if ! diff -u "$tmp/listed" "$tmp/exported"; then
	echo "FAIL: exports differ from $sym (- listed, + exported)" >&2
	exit 1
fi
if ! diff -u "$tmp/declared" "$tmp/listed"; then
	echo "FAIL: header declarations differ from $sym (- declared, + listed)" >&2
	exit 1
fi
echo "$(wc -l < "$tmp/exported") symbols exported, all in whr.sym and the headers"
