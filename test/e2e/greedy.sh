#!/bin/bash
# e2e: stories260k's greedy text through hf-run equals llama.cpp's
# (models/stories260k/reference.json), with the CPU kernels hf picks
# and with the generic ones (HF_CPU=generic). The short check a cross
# build runs under its emulator: HF_EXE_WRAPPER (qemu-aarch64, from the
# cross file) runs the commands there.
set -u
BIN=${HF_BIN:-build/tools}
MODELS=${HF_MODELS:-models}
run=$(cd "$BIN" && pwd)/hf-run
MODELS=$(cd "$MODELS" && pwd)
read -r -a wrap <<<"${HF_EXE_WRAPPER:-}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# greedy NAME ENV...: hf-run with ENV on "Once upon a time", 64 tokens,
# against the reference's greedy ids and text.
greedy() {
	local name=$1 rc
	shift
	cases=$((cases + 1))
	env "$@" "${wrap[@]}" "$run" -m "$MODELS/stories260k" \
		-p "Once upon a time" -n 64 </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name: exit $rc; stderr: $(head -c 400 "$tmp/err")"
		return
	fi
	python3 - "$tmp/out" "$MODELS/stories260k/reference.json" \
		>"$tmp/why" 2>&1 <<-'EOF' || fail "$name: $(head -c 600 "$tmp/why")"
	import json, sys
	got = json.load(open(sys.argv[1]))
	ref = json.load(open(sys.argv[2]))["greedy"]
	assert got["ids"] == ref["output_ids"], got["ids"]
	assert got["text"] == ref["output_text"], repr(got["text"])
	EOF
}

greedy "stories260k"
greedy "stories260k HF_CPU=generic" HF_CPU=generic

echo "greedy: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
