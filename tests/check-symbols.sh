#!/bin/sh
# The shared library exports exactly the symbols listed in whr.sym, and
# every function the public headers declare is among them. The private
# node (WHR_PRIVATE: the storage interface the whr tools use) exports
# whr_store_* by a pattern: each such export must be declared in the
# private header, and none in the public ones.
# Usage: check-symbols.sh LIBWHR.so WHR.SYM INCLUDE_DIR GENERATED_INCLUDE_DIR
#        PRIVATE_HEADER
set -eu
lib=$1 sym=$2 inc=$3 gen=$4 private=$5
[ -f "$lib" ] || { echo "missing library $lib" >&2; exit 1; }
[ -f "$sym" ] || { echo "missing symbol file $sym" >&2; exit 1; }
[ -f "$gen/version.h" ] || { echo "missing generated $gen/version.h" >&2; exit 1; }
[ -f "$private" ] || { echo "missing private header $private" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { print $3 }' \
	| sed 's/@.*//' | sort -u > "$tmp/all"
grep -E '^whr_store_' "$tmp/all" > "$tmp/private" || true
grep -vE '^whr_store_' "$tmp/all" > "$tmp/exported" || true
grep -hoE '\bwhr_store_[a-z0-9_]+\(' "$private" | tr -d '(' | sort -u \
	> "$tmp/private-declared"
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
if grep -qE '\bwhr_store_' "$inc"/*.h; then
	echo "FAIL: a public header declares a private whr_store_ function" >&2
	exit 1
fi
[ -s "$tmp/private" ] || { echo "no whr_store_ symbols exported from $lib" >&2; exit 1; }
if ! diff -u "$tmp/private-declared" "$tmp/private"; then
	echo "FAIL: private exports differ from $private (- declared, + exported)" >&2
	exit 1
fi
echo "$(wc -l < "$tmp/exported") symbols exported, all in whr.sym and the headers;" \
	"$(wc -l < "$tmp/private") private ones, all in $private"
