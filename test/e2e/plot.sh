#!/bin/bash
# e2e: scripts/plot-loss turns a metrics stream (hf-finetune's records,
# made up here: a decaying loss and eval points every 15 steps) into a
# PNG: the file is a PNG of the size asked, its pixels hold the curve's
# blue and the eval points' red, and a stream without eval points has no
# red. Bad input: one line naming the file and line, exit 1, no PNG.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
plot=$ROOT/scripts/plot-loss
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "SKIP: gnuplot not installed (scripts/bootstrap installs gnuplot-nox)" >&2
	exit 77
fi

python3 - "$tmp" <<'EOF_PY'
import json, math, sys
d = sys.argv[1]
with open(d + "/m.jsonl", "w") as a, open(d + "/noeval.jsonl", "w") as b:
    for s in range(1, 61):
        r = {"step": s, "epoch": s / 20, "loss": 4 * math.exp(-s / 12) + 0.05,
             "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 1000.0}
        b.write(json.dumps(r) + "\n")
        if s % 15 == 0:
            r["eval_loss"] = 4 * math.exp(-s / 12) + 0.2
        a.write(json.dumps(r) + "\n")
EOF_PY

# pixels FILE: "W H BLUE RED": size and counts of the curve colours
# (#1f77b4, #d62728, within 40 of each channel for antialiasing)
pixels() {
	python3 - "$1" <<'EOF_PY'
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
pos, idat, ihdr = 8, b"", None
while pos < len(b):
    n, = struct.unpack(">I", b[pos:pos + 4]); kind = b[pos + 4:pos + 8]
    data = b[pos + 8:pos + 8 + n]; pos += 12 + n
    if kind == b"IHDR": ihdr = data
    elif kind == b"IDAT": idat += data
w, h, depth, ctype = struct.unpack(">IIBB", ihdr[:10])
assert depth == 8 and ctype in (2, 6), "unexpected PNG colour type %d" % ctype
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat); stride = w * bpp
rows, prev, i = [], bytearray(stride), 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; up = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + up) & 255
        elif f == 3: line[x] = (line[x] + (a + up) // 2) & 255
        elif f == 4:
            p = a + up - c; pa, pb, pc = abs(p - a), abs(p - up), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else up if pb <= pc else c)) & 255
    rows.append(line); prev = line
def count(col):
    n = 0
    for line in rows:
        for x in range(0, stride, bpp):
            if all(abs(line[x + k] - col[k]) < 40 for k in range(3)): n += 1
    return n
print(w, h, count((0x1f, 0x77, 0xb4)), count((0xd6, 0x27, 0x28)))
EOF_PY
}

cases=$((cases + 1))
if ! "$plot" -o "$tmp/loss.png" "$tmp/m.jsonl" 2>"$tmp/err"; then
	fail "plot: exit $?: $(cat "$tmp/err")"
elif ! read -r w h blue red < <(pixels "$tmp/loss.png"); then
	fail "plot: loss.png does not decode as a PNG"
else
	[ "$w x $h" = "900 x 540" ] || fail "plot: size $w x $h, want 900 x 540"
	[ "$blue" -gt 500 ] || fail "plot: $blue pixels of the training curve, want > 500"
	[ "$red" -gt 40 ] || fail "plot: $red pixels of eval points, want > 40"
fi

# from standard input, no eval points: no red
cases=$((cases + 1))
if ! "$plot" -o "$tmp/noeval.png" <"$tmp/noeval.jsonl" 2>"$tmp/err"; then
	fail "stdin: exit $?: $(cat "$tmp/err")"
else
	read -r w h blue red < <(pixels "$tmp/noeval.png")
	[ "$blue" -gt 500 ] || fail "stdin: $blue pixels of the training curve, want > 500"
	[ "$red" -lt 10 ] || fail "stdin: $red red pixels without eval points"
fi

# bad input: one line naming the culprit, exit 1, no PNG left
bad() {
	local name=$1 text=$2 frag=$3 rc
	cases=$((cases + 1))
	printf '%b' "$text" >"$tmp/$name.jsonl"
	"$plot" -o "$tmp/$name.png" "$tmp/$name.jsonl" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 1 ] || fail "$name: exit $rc, want 1"
	grep -qF -- "$frag" "$tmp/err" || fail "$name: '$frag' not in: $(cat "$tmp/err")"
	[ "$(wc -l <"$tmp/err")" = 1 ] || fail "$name: want one line, got: $(cat "$tmp/err")"
	[ ! -e "$tmp/$name.png" ] || fail "$name: a PNG was written"
	ls "$tmp" | grep -q "$name.png.tmp" && fail "$name: a temporary file was left"
}
bad badjson '{"step": 1, "loss": 2}\n{"step": 2, "loss": \n' "badjson.jsonl:2: bad JSON"
bad nostep '{"loss": 2}\n' "nostep.jsonl:1: want a metrics object"
bad noloss '{"step": 1}\n' "no loss values"

echo "plot: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
