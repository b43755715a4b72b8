#!/bin/sh
# Every ```c block of a document compiles against the public headers, as
# C99 with warnings as errors, so the documentation cannot drift from the
# API. A block that is a fragment says so with a line `/* ... */` and is
# skipped; the others must be whole translation units (a block without
# main() is compiled, not linked).
# Usage: check-doc-snippets.sh CC DOC.md SRC_INCLUDE BUILD_INCLUDE
set -eu
cc=$1 doc=$2 src_inc=$3 build_inc=$4
[ -f "$doc" ] || { echo "missing $doc" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '
	/^```c$/ { n++; on = 1; f = dir "/block" n ".c"; printf "" > f; next }
	on && /^```$/ { on = 0; close(f); next }
	on { print >> f }
' "$doc"
compiled=0 skipped=0
for f in "$tmp"/block*.c; do
	[ -e "$f" ] || { echo "no \`\`\`c block in $doc" >&2; exit 1; }
	if grep -qx '[[:space:]]*/\* \.\.\. \*/' "$f"; then
		skipped=$((skipped + 1))
		continue
	fi
	if ! "$cc" -std=c99 -Wall -Wextra -Werror -Wno-unused-parameter \
		-I"$src_inc" -I"$build_inc" -c "$f" -o "$f.o"; then
		echo "$doc: block $(basename "$f" .c | tr -dc 0-9) does not compile:" >&2
		cat -n "$f" >&2
		exit 1
	fi
	compiled=$((compiled + 1))
done
[ "$compiled" -gt 0 ] || { echo "$doc: no whole block to compile" >&2; exit 1; }
echo "$doc: $compiled block(s) compile, $skipped fragment(s) skipped"
