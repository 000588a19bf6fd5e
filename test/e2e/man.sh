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
[ "$n" -ge 2 ] || { echo "FAIL: only $n man pages" >&2; exit 1; }
echo "man: $n pages, $failed problems" >&2
[ "$failed" = 0 ]
