#!/bin/bash
# e2e: hf-inspect on every fixture model and on corrupted copies of them;
# checks exit codes, that stdout agrees with an independent reading of
# the files (python3), and that each error names its culprit.
set -u
BIN=${HF_BIN:-build/tools}
FX=${HF_FIXTURES:-test/fixtures}
MODELS=${HF_MODELS:-models}
inspect=$BIN/hf-inspect
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# expect NAME RC FRAGMENT CMD...: exit status RC, and FRAGMENT (if not
# empty) in stderr for failures or stdout for successes.
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ -n "${VERBOSE:-}" ] && [ "$want" = 1 ] && cat "$tmp/err" >&2
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		return
	fi
	local where=$tmp/out
	[ "$want" = 0 ] || where=$tmp/err
	if [ -n "$frag" ] && ! grep -qF -- "$frag" "$where"; then
		fail "$name: '$frag' not in $(basename "$where"): $(head -c 400 "$where")"
	fi
	if [ "$want" = 1 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
		fail "$name: want one line on stderr, got: $(cat "$tmp/err")"
	fi
}

# Independent reading of a model (python3's json, not our parser):
# tensor count, parameters, tensor bytes, architectures[0].
st_facts() {
	python3 - "$1/model.safetensors" "$1/config.json" <<'EOF'
import json, struct, sys
arch = json.load(open(sys.argv[2]))['architectures'][0]
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
h.pop('__metadata__', None)
params = 0
for t in h.values():
    p = 1
    for d in t['shape']:
        p *= d
    params += p
print(len(h), params, len(b) - 8 - n, arch)
EOF
}

models=()
for d in "$FX"/models/*/ "$MODELS"/stories260k/; do
	[ -f "$d/config.json" ] && models+=("${d%/}")
done
[ "${#models[@]}" -ge 13 ] || fail "found only ${#models[@]} models"

for d in "${models[@]}"; do
	name=$(basename "$d")
	read -r ntensors params tbytes arch < <(st_facts "$d")
	expect "$name summary" 0 "$arch" "$inspect" "$d"
	grep -qF "parameters    $params " "$tmp/out" ||
		fail "$name: parameters $params not in summary"
	grep -qF "tensors       $ntensors" "$tmp/out" ||
		fail "$name: $ntensors tensors not in summary"
	expect "$name json" 0 '"parameters"' "$inspect" --json "$d"
	python3 - "$tmp/out" "$ntensors" "$params" "$tbytes" "$arch" <<'EOF' || fail "$name: --json disagrees"
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert len(j['tensors']) == int(sys.argv[2]), 'tensor count'
assert j['parameters'] == int(sys.argv[3]), 'parameters'
assert j['tensor_bytes'] == int(sys.argv[4]), 'tensor bytes'
assert j['config']['architecture'] == sys.argv[5], 'architecture'
assert j['files'][0]['metadata'].get('format') == 'pt', 'metadata'
EOF
	expect "$name validate" 0 "ok  config.json" "$inspect" --validate "$d"
	expect "$name file" 0 "tensors       $ntensors" "$inspect" "$d/model.safetensors"
done

# The EXAMPLES of man/hf-inspect.1 and man/hf.1, as written there.
(
	cd "$MODELS/.." || exit 1
	expect "man example summary" 0 "LlamaForCausalLM" "$inspect" models/stories260k
	expect "man example validate" 0 "ok  tokenizer.json" "$inspect" --validate models/stories260k
	expect "man example json" 0 '"file":"model.safetensors"' "$inspect" --json models/stories260k/model.safetensors
	expect "man example hf" 0 "LlamaForCausalLM" "$BIN/hf" inspect models/stories260k
	exit "$failed"
) || failed=$((failed + 1))
case $BIN in /*) ;; *) fail "HF_BIN must be absolute for the examples: $BIN" ;; esac

# A file on standard input (a pipe cannot be mapped: it is read whole).
f=$FX/models/gpt2-tiny/model.safetensors
expect "stdin" 0 "tensors       30" bash -c 'cat "$1" | "$2" -' _ "$f" "$inspect"
expect "stdin json" 0 '"file":"standard input"' bash -c 'cat "$1" | "$2" --json -' _ "$f" "$inspect"
expect "stdin validate" 0 "ok  -: 30 tensors" bash -c 'cat "$1" | "$2" --validate -' _ "$f" "$inspect"
expect "stdin truncated" 1 "past the end of 'standard input'" bash -c 'head -c 5000 "$1" | "$2" -' _ "$f" "$inspect"

# Usage and missing input.
expect "no args" 2 "a file or directory is required" "$inspect"
expect "two args" 2 "one file or directory only" "$inspect" a b
expect "bad option" 2 "unknown option '--frob'" "$inspect" --frob x
expect "bad short option" 2 "unknown option '-z'" "$inspect" -z x
expect "help" 0 "usage: hf-inspect" "$inspect" -h
expect "help via hf" 0 "usage: hf-inspect" "$BIN/hf" inspect --help
expect "json+validate" 2 "do not go together" "$inspect" --json --validate x
expect "missing path" 1 "$tmp/nope" "$inspect" "$tmp/nope"
expect "dir without weights" 1 "no model.safetensors" "$inspect" "$tmp"

# --devices lists what the Vulkan loader sees (lavapipe in CI): each
# device's index and type, the same devices as text and JSON.
expect devices 0 "" "$inspect" --devices
if [ "$(wc -l <"$tmp/out")" -ge 1 ]; then
	text_n=$(grep -c '^[0-9]' "$tmp/out")
	expect devices-json 0 '"subgroup_size":' "$inspect" --devices --json
	json_n=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(x["type"] in ("discrete","integrated","virtual","cpu","other") for x in d); print(len(d))' "$tmp/out") ||
		fail "devices-json: not a JSON array of devices: $(cat "$tmp/out")"
	[ "${json_n:-x}" = "$text_n" ] ||
		fail "devices: $text_n in text, ${json_n:-?} in JSON"
fi
expect devices-operand 2 "--devices takes no operand" "$inspect" --devices x

# Corrupted copies of a fixture: one problem each.
src=$FX/models/llama-tiny
size=$(stat -c %s "$src/model.safetensors")
# corrupt NAME: a fresh copy of llama-tiny in $tmp/NAME, echoes its path.
corrupt() {
	rm -rf "${tmp:?}/$1"
	cp -r "$src" "$tmp/$1"
	chmod -R u+w "$tmp/$1"
	echo "$tmp/$1"
}
# edit FILE OLD NEW: replace the first OLD by NEW (same length) in place.
edit() {
	python3 - "$@" <<'EOF'
import os, sys
p, old, new = sys.argv[1], os.fsencode(sys.argv[2]), os.fsencode(sys.argv[3])
assert len(old) == len(new)
b = open(p, 'rb').read()
assert old in b, 'pattern not found'
open(p, 'wb').write(b.replace(old, new, 1))
EOF
}

d=$(corrupt truncated)
truncate -s $((size - 1)) "$d/model.safetensors"
expect "truncated" 1 "past the end of '$d/model.safetensors'" "$inspect" "$d"
expect "truncated validate" 1 "model.safetensors" "$inspect" --validate "$d"

d=$(corrupt trailing)
printf 'x' >>"$d/model.safetensors"
expect "trailing bytes" 1 "1 byte(s) after the end of the last tensor" "$inspect" "$d"

d=$(corrupt headerlen)
printf '\377\377\377\000\000\000\000\000' |
	dd of="$d/model.safetensors" conv=notrunc status=none
expect "header length past end" 1 "header length 16777215 points past the end" "$inspect" "$d/model.safetensors"

d=$(corrupt hugeheader)
printf '\000\000\000\000\001\000\000\000' |
	dd of="$d/model.safetensors" conv=notrunc status=none
expect "header too large" 1 "over the limit" "$inspect" "$d"

d=$(corrupt tiny)
printf 'abc' >"$d/model.safetensors"
expect "shorter than 8 bytes" 1 "too short" "$inspect" "$d"

d=$(corrupt overlap)
edit "$d/model.safetensors" '[65536,65664]' '[65535,65664]'
expect "overlapping offsets" 1 "overlapping 'model.embed_tokens.weight'" "$inspect" "$d"

d=$(corrupt hole)
edit "$d/model.safetensors" '[65536,65664]' '[65537,65664]'
expect "hole" 1 "'model.layers.0.input_layernorm.weight' in '$d/model.safetensors' begins at data byte 65537, leaving a hole" "$inspect" "$d"

d=$(corrupt dtypesize)
edit "$d/model.safetensors" '"dtype":"BF16","shape":[64],' '"dtype":"I32" ,"shape":[64],'
expect "wrong dtype size" 1 "'model.layers.0.input_layernorm.weight'" "$inspect" "$d"
grep -qF "need 256 bytes" "$tmp/err" || fail "wrong dtype size: byte counts not given"

d=$(corrupt unknowndtype)
edit "$d/model.safetensors" '"BF16"' '"BF17"'
expect "unknown dtype" 1 "unknown dtype 'BF17'" "$inspect" "$d"

d=$(corrupt nonobject)
python3 - "$d/model.safetensors" <<'EOF'
import struct, sys
b = bytearray(open(sys.argv[1], 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
b[8:8 + n] = b'["__metadata__"]'.ljust(n)
open(sys.argv[1], 'wb').write(b)
EOF
expect "non-object JSON" 1 "header is not a JSON object" "$inspect" "$d"

d=$(corrupt badjson)
edit "$d/model.safetensors" '"shape":[512,64]' '"shape":[512,64}'
expect "invalid JSON" 1 "not valid JSON at byte" "$inspect" "$d"

d=$(corrupt utf8)
edit "$d/model.safetensors" 'model.norm.weight' $'model.nor\xff.weight'
expect "invalid UTF-8 key" 1 "not valid UTF-8 at byte" "$inspect" "$d"

d=$(corrupt duplicate)
edit "$d/model.safetensors" '"model.layers.1.input_layernorm.weight"' '"model.layers.0.input_layernorm.weight"'
expect "duplicate names" 1 "tensor 'model.layers.0.input_layernorm.weight' appears twice" "$inspect" "$d"

d=$(corrupt metadata)
edit "$d/model.safetensors" '{"format":"pt"}' '{"format":1234}'
expect "non-string metadata" 1 "__metadata__ key 'format'" "$inspect" "$d"

d=$(corrupt config)
python3 - "$d/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
del c['hidden_size']
json.dump(c, open(sys.argv[1], 'w'))
EOF
expect "config missing key" 1 "missing key 'hidden_size'" "$inspect" "$d"
grep -qF "$d/config.json" "$tmp/err" || fail "config missing key: file not named"

d=$(corrupt noconfig)
rm "$d/config.json"
expect "no config, summary" 0 "tensors       20" "$inspect" "$d"
expect "no config, validate" 1 "no config.json" "$inspect" --validate "$d"

d=$(corrupt genconfig)
printf '{"bos_token_id": 1,' >"$d/generation_config.json"
expect "broken generation_config" 1 "generation_config.json" "$inspect" --validate "$d"

rm -rf "$tmp/stories"
cp -r "$MODELS/stories260k" "$tmp/stories"
chmod -R u+w "$tmp/stories"
head -c 1000 "$MODELS/stories260k/tokenizer.json" >"$tmp/stories/tokenizer.json"
expect "broken tokenizer.json" 1 "tokenizer.json" "$inspect" --validate "$tmp/stories"
expect "broken tokenizer.json, summary" 0 "LlamaForCausalLM" "$inspect" "$tmp/stories"

d=$(corrupt reference)
truncate -s 100 "$d/reference.safetensors"
expect "broken extra safetensors" 1 "reference.safetensors" "$inspect" --validate "$d"

# A sharded copy of llama-tiny, split by python3 (not by hf): one name
# space over both shards, and an index naming a tensor a shard lacks.
shard() {
	python3 - "$src" "$1" <<'EOF'
import json, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for f in ('config.json', 'generation_config.json'):
    open(os.path.join(dst, f), 'wb').write(open(os.path.join(src, f), 'rb').read())
b = open(os.path.join(src, 'model.safetensors'), 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop('__metadata__')
names = sorted(h)
parts = [names[:len(names) // 2], names[len(names) // 2:]]
wm = {}
for i, part in enumerate(parts):
    fn = 'model-%05d-of-%05d.safetensors' % (i + 1, len(parts))
    hdr, data, off = {'__metadata__': {'format': 'pt'}}, b'', 0
    for k in part:
        s, e = h[k]['data_offsets']
        hdr[k] = {'dtype': h[k]['dtype'], 'shape': h[k]['shape'], 'data_offsets': [off, off + e - s]}
        data += b[8 + n + s:8 + n + e]; off += e - s; wm[k] = fn
    js = json.dumps(hdr).encode(); js += b' ' * (-len(js) % 8)
    open(os.path.join(dst, fn), 'wb').write(struct.pack('<Q', len(js)) + js + data)
json.dump({'metadata': {'total_size': len(b) - 8 - n}, 'weight_map': wm},
          open(os.path.join(dst, 'model.safetensors.index.json'), 'w'))
EOF
}
read -r ntensors params tbytes arch < <(st_facts "$src")
shard "$tmp/sharded"
expect "sharded summary" 0 "parameters    $params " "$inspect" "$tmp/sharded"
grep -qF "model-00002-of-00002.safetensors" "$tmp/out" || fail "sharded: second shard not listed"
grep -qF "tensors       $ntensors" "$tmp/out" || fail "sharded: want $ntensors tensors"
expect "sharded validate" 0 "ok  weights: $ntensors tensors in 2 files" "$inspect" --validate "$tmp/sharded"
expect "sharded index path" 0 "tensors       $ntensors" "$inspect" "$tmp/sharded/model.safetensors.index.json"
shard "$tmp/badindex"
edit "$tmp/badindex/model.safetensors.index.json" '"model.norm.weight": "model-00002-of-00002' '"model.norm.weight": "model-00001-of-00002'
expect "index names a missing tensor" 1 "maps tensor 'model.norm.weight' to 'model-00001-of-00002.safetensors', which does not hold it" "$inspect" "$tmp/badindex"
shard "$tmp/lostshard"
rm "$tmp/lostshard/model-00001-of-00002.safetensors"
expect "missing shard" 1 "model-00001-of-00002.safetensors" "$inspect" --validate "$tmp/lostshard"

echo "inspect: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
