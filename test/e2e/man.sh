#!/bin/bash
# e2e: every man page renders with groff -man -ww and no warning at all.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
failed=0
n=0
for page in "$src"/man/*.1; do
	n=$((n + 1))
	out=$(groff -man -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL: $page:" >&2
		echo "$out" >&2
		failed=$((failed + 1))
	fi
	for sec in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" \
		   ENVIRONMENT EXAMPLES "SEE ALSO"; do
		grep -q "^\.SH \"\?$sec\"\?$" "$page" ||
			{ echo "FAIL: $page: no $sec section" >&2
			  failed=$((failed + 1)); }
	done
done

# --help and the page agree: each long option of the usage is in the
# OPTIONS, and the usage lines (before "options:") name the same long
# options as the SYNOPSIS
BIN=${HF_BIN:-$src/build/tools}
longopts() { grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
# the lines of section $2 of page $1, roff dashes undone
section() { awk -v s="$2" '/^\.SH/ { p = ($0 == ".SH " s) } p' "$1" | sed 's/\\-/-/g'; }
help=$(mktemp)
trap 'rm -f "$help"' EXIT
for c in run tokenize inspect pull quantize; do
	page=$src/man/hf-$c.1
	"$BIN/hf-$c" --help >"$help" 2>/dev/null
	all=$(longopts <"$help")
	usage=$(sed '/^options:/,$d' "$help" | longopts)
	[ -n "$all" ] || { echo "FAIL: hf-$c --help printed no options" >&2
			   failed=$((failed + 1)); continue; }
	opts=$(section "$page" OPTIONS | longopts)
	syn=$(section "$page" SYNOPSIS | longopts)
	miss=$(comm -23 <(echo "$all") <(echo "$opts") | tr '\n' ' ')
	[ -z "$miss" ] || { echo "FAIL: $page: OPTIONS lacks $miss(in --help)" >&2
			    failed=$((failed + 1)); }
	diff=$(comm -3 <(echo "$usage") <(echo "$syn") | tr -d '\t' | tr '\n' ' ')
	[ -z "$diff" ] || { echo "FAIL: $page: SYNOPSIS and --help usage differ on $diff" >&2
			    failed=$((failed + 1)); }
done
[ "$n" -ge 2 ] || { echo "FAIL: only $n man pages" >&2; exit 1; }
echo "man: $n pages, $failed problems" >&2
[ "$failed" = 0 ]
