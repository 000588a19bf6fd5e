#!/bin/bash
# e2e: our ggml block formats (lib/export/ggml_types.c, ggml_kquants.c)
# against the real ggml: test/runtimes/ggml_quants.c is compiled with
# those sources and linked with the prebuilt libggml-base.so of
# node-llama-cpp (scripts/bootstrap-runtimes), then quantizes many rows
# of every type both ways and compares the bytes, and dequantizes both
# ways and compares the bits. Built twice: with the build's flags, and
# with -O3 -march=native, where the compiler could fuse multiply-adds
# that ggml's generic build does not. Skips (77) without the runtimes.
set -u
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RT=$SRC/test/runtimes
LIBDIR=$RT/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64
HDR=$RT/llama.cpp/ggml/include

if [ ! -d "$RT/node_modules" ]; then
	echo "runtime_ggml: skipped: test/runtimes/node_modules is absent (run scripts/bootstrap-runtimes)" >&2
	exit 77
fi
if [ -n "${HF_EXE_WRAPPER:-}" ] || [ "$(uname -sm)" != "Linux x86_64" ]; then
	echo "runtime_ggml: skipped: the prebuilt ggml is for linux x86_64 and this is $(uname -sm)${HF_EXE_WRAPPER:+ (cross build)}" >&2
	exit 77
fi
for f in "$LIBDIR/libggml-base.so" "$HDR/ggml.h"; do
	if [ ! -f "$f" ]; then
		echo "runtime_ggml: $f is missing: run scripts/bootstrap-runtimes" >&2
		exit 1
	fi
done

# The C compiler meson configured (the c_COMPILER rule of the build, with
# its launcher such as ccache: every word before $ARGS), else $CC, else cc.
cc=
if [ -n "${HF_BUILD:-}" ] && [ -f "$HF_BUILD/build.ninja" ]; then
	cc=$(awk '/^rule c_COMPILER$/ {
		getline
		for (i = 3; i <= NF && $i != "$ARGS"; i++)
			printf "%s%s", (i > 3 ? " " : ""), $i
		exit
	}' "$HF_BUILD/build.ninja")
fi
cc=${cc:-${CC:-cc}}
read -r -a ccv <<<"$cc"


tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

build_and_run() {
	local name=$1
	shift
	if ! "${ccv[@]}" -std=gnu11 "$@" -Wall -Wextra -Wno-unused-parameter \
		-I "$SRC/lib" -I "$HDR" \
		"$RT/ggml_quants.c" "$SRC/lib/export/ggml_types.c" \
		"$SRC/lib/export/ggml_kquants.c" "$SRC/lib/core/pool.c" \
		"$SRC/lib/core/err.c" \
		-o "$tmp/$name" -L "$LIBDIR" -l:libggml-base.so \
		-Wl,-rpath,"$LIBDIR" -lm -pthread 2>"$tmp/$name.log"; then
		echo "FAIL: runtime_ggml ($name): $cc could not build the harness:" >&2
		cat "$tmp/$name.log" >&2
		failed=$((failed + 1))
		return
	fi
	echo "== $name: $cc $*"
	if ! "$tmp/$name"; then
		echo "FAIL: runtime_ggml ($name): bytes differ from ggml" >&2
		failed=$((failed + 1))
	fi
}

build_and_run default -O2
if echo 'int main(void){return 0;}' |
	"${ccv[@]}" -x c -O3 -march=native -o "$tmp/probe" - 2>/dev/null; then
	build_and_run native -O3 -march=native
fi

if [ "$failed" != 0 ]; then
	echo "runtime_ggml: $failed builds failed" >&2
	exit 1
fi
echo "runtime_ggml: ok"
