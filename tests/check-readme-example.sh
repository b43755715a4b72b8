#!/bin/sh
# The README's example program compiles against the public headers, links
# against libwhr, and runs: --help exits 0, no secret exits 1.
# Usage: check-readme-example.sh CC README SRC_INCLUDE BUILD_INCLUDE LIBDIR SANITIZE
set -eu
cc=$1 readme=$2 src_inc=$3 build_inc=$4 libdir=$5 sanitize=${6:-none}
san=""
# A sanitized libwhr needs the sanitizer runtime in the program too.
[ "$sanitize" = none ] || san="-fsanitize=$sanitize"
[ -f "$readme" ] || { echo "missing $readme" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The first ```c block.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' "$readme" > "$tmp/example.c"
[ -s "$tmp/example.c" ] || { echo "no \`\`\`c block in $readme" >&2; exit 1; }
grep -q 'whr_receiver_run' "$tmp/example.c" || { echo "the example does not run a receiver" >&2; exit 1; }
"$cc" $san -std=c99 -Wall -Wextra -Werror -Wno-unused-parameter -I"$src_inc" -I"$build_inc" \
	"$tmp/example.c" -o "$tmp/example" -L"$libdir" -lwhr -Wl,-rpath,"$libdir"
"$tmp/example" --help > "$tmp/help.txt" || { echo "example --help failed" >&2; exit 1; }
grep -q -- '--max-body' "$tmp/help.txt" || { echo "example --help lacks the options" >&2; exit 1; }
set +e
env -u MS_WebHookReceiverSecret_Custom -u WHR_SECRETS_FILE \
	-u MS_WebHookReceiverSecret_Custom_FILE "$tmp/example" --listen 127.0.0.1:0 \
	2> "$tmp/err.txt"
rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "example without a secret exited $rc, expected 1" >&2; cat "$tmp/err.txt" >&2; exit 1; }
grep -q 'no receiver secret' "$tmp/err.txt" || { echo "no 'no receiver secret' message" >&2; exit 1; }
echo "README example compiles, links and runs"
