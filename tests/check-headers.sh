#!/bin/sh
# Each public header must compile on its own, as strict C99 and as C++.
# Usage: check-headers.sh CC CXX SRC_INCLUDE BUILD_INCLUDE HEADER...
set -eu
cc=$1 cxx=$2 src_inc=$3 build_inc=$4
shift 4
[ $# -gt 0 ] || { echo "no headers given" >&2; exit 1; }
command -v "$cxx" >/dev/null 2>&1 || { echo "no C++ compiler ($cxx): install g++" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checked=0
for header in "$@"; do
	name=$(basename "$header")
	printf '#include <whr/%s>\nint main(void) { return 0; }\n' "$name" > "$tmp/t.c"
	"$cc" -std=c99 -pedantic -Wall -Wextra -Werror -I"$src_inc" -I"$build_inc" \
		-c "$tmp/t.c" -o "$tmp/t.o" || { echo "FAIL: $name as C99" >&2; exit 1; }
	printf '#include <whr/%s>\nint main() { return 0; }\n' "$name" > "$tmp/t.cc"
	"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -I"$src_inc" -I"$build_inc" \
		-c "$tmp/t.cc" -o "$tmp/t.o" || { echo "FAIL: $name as C++" >&2; exit 1; }
	checked=$((checked + 1))
done
# version.h is generated into the build tree.
printf '#include <whr/version.h>\nint main(void) { return WHR_VERSION_MAJOR; }\n' > "$tmp/v.c"
"$cc" -std=c99 -pedantic -Werror -I"$src_inc" -I"$build_inc" -c "$tmp/v.c" -o "$tmp/v.o" \
	|| { echo "FAIL: version.h" >&2; exit 1; }
echo "$checked headers compile alone as C99 and C++"
