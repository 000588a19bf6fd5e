#!/bin/bash
# e2e: hf-export from quantized checkpoints (the formats hf-quantize
# writes). A few fixtures by format, not the whole grid:
#   - the GGUF export of a quantized checkpoint holds the tensors and
#     metadata of the GGUF export of its `hf-quantize --dequantize` copy,
#     byte for byte, at f16, q8_0 and q4_K (a python3 GGUF reader here
#     compares them tensor by tensor, by name: the copy stores its tensors
#     in another order); its ONNX export gives the same files (every
#     variant, config.json included, cmp);
#   - a BitNet checkpoint 256 wide goes to tq1_0 and tq2_0 with its
#     ternary values kept: decoded here from the GGUF blocks, every
#     linear's trits are the checkpoint's (unpacked here from its U8
#     rows, Q/K rows permuted as docs/onnx-gguf-export.md B4 says) and
#     every block's scale is the f16 of its weight_scale;
#   - llama.cpp (test/runtimes/llamacpp.c, as export_llamacpp.sh builds
#     it) loads the f32 export of llama-tiny in nf4 and its logits match
#     hf-run's on the nf4 checkpoint within the f32 bar, and the tq2_0
#     export of the BitNet checkpoint within the bound below; skipped
#     (the rest still runs) without the runtimes;
#   - refused, exit 1 in one line naming both formats, no file left: a
#     non-BitNet checkpoint to a ternary type, a BitNet one whose rows
#     llama-quantize would give Q4_0 in a ternary file, a method hf does
#     not read (GGUF and ONNX).
set -u
exec </dev/null
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
RT=${HF_RUNTIMES:-$ROOT/test/runtimes}
read -r -a wrap <<<"${HF_EXE_WRAPPER:-}"
x=$BIN/hf-export
q=$BIN/hf-quantize
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# ok NAME CMD...: CMD exits 0 (stdout to $tmp/out, stderr to $tmp/err;
# stdin the caller's).
ok() {
	local name=$1 rc
	shift
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name: exit $rc: $(head -c 600 "$tmp/err")"
		return 1
	fi
	return 0
}

# refused NAME FRAGMENT OUT CMD...: exit 1, one line on stderr holding
# FRAGMENT, and nothing at OUT (nor a temporary beside it).
refused() {
	local name=$1 frag=$2 out=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" </dev/null >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != 1 ]; then
		fail "$name: exit $rc, want 1: $(head -c 400 "$tmp/err")"
	elif [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -qF -- "$frag" "$tmp/err"; then
		fail "$name: want one line with '$frag', got: $(cat "$tmp/err")"
	elif compgen -G "$out*" >/dev/null; then
		fail "$name: left $(echo "$out"*)"
	fi
}

# check NAME PYTHON ARGS...: the python3 program PYTHON on ARGS; its last
# line of output says what it measured.
check() {
	local name=$1 code=$2
	shift 2
	cases=$((cases + 1))
	if python3 -c "$code" "$@" </dev/null >"$tmp/why" 2>&1; then
		echo "$name: $(tail -n 1 "$tmp/why")" >&2
	else
		fail "$name: $(head -c 800 "$tmp/why")"
	fi
}

# A GGUF reader: metadata (type, raw bytes) by key, tensors (type, ne,
# data bytes) by name.
gguf_py='
import struct
def gguf(p):
    b = open(p, "rb").read()
    o = 0
    def u(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, b, o)
        o += struct.calcsize(fmt)
        return v[0]
    def s():
        nonlocal o
        n = u("Q")
        o += n
        return b[o - n:o].decode()
    size = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    def val(t):
        nonlocal o
        if t == 8:
            s()
        elif t == 9:
            et, n = u("I"), u("Q")
            for _ in range(n):
                val(et)
        else:
            o += size[t]
    assert u("I") == 0x46554747, "not a GGUF file: " + p
    assert u("I") == 3
    nt, nkv = u("Q"), u("Q")
    kv, align = {}, 32
    for _ in range(nkv):
        k = s()
        t = u("I")
        a = o
        val(t)
        kv[k] = (t, b[a:o])
        if k == "general.alignment":
            align = struct.unpack("<I", kv[k][1])[0]
    infos = []
    for _ in range(nt):
        name = s()
        ne = [u("Q") for _ in range(u("I"))]
        infos.append((name, u("I"), ne, u("Q")))
    start = (o + align - 1) // align * align
    offs = sorted(i[3] for i in infos) + [len(b) - start]
    ts = {}
    for name, t, ne, off in infos:
        end = min(e for e in offs if e > off)
        ts[name] = (t, ne, b[start + off:start + end])
    return kv, ts
'

same_gguf="$gguf_py"'
import sys
ka, ta = gguf(sys.argv[1])
kb, tb = gguf(sys.argv[2])
diff = sorted(k for k in set(ka) | set(kb) if ka.get(k) != kb.get(k))
assert not diff, "metadata differs: %s" % diff
assert set(ta) == set(tb), "tensors of one file only: %s" % sorted(set(ta) ^ set(tb))
bad = [n for n in sorted(ta) if ta[n] != tb[n]]
assert not bad, "%d of %d tensors differ, first %s: type %d shape %s vs type %d shape %s" % (
    len(bad), len(ta), bad[0], ta[bad[0]][0], ta[bad[0]][1], tb[bad[0]][0], tb[bad[0]][1])
types = sorted(set(t[0] for t in ta.values()))
print("%d tensors (ggml types %s) and %d keys identical" % (len(ta), types, len(ka)))
'

calib=$tmp/calib.jsonl
python3 - >"$calib" <<'EOF'
import json, random
random.seed(7)
for _ in range(8):
    print(json.dumps({"ids": [random.randrange(5, 256) for _ in range(32)]}))
EOF

# quantize NAME SRC ARGS...: $tmp/q/NAME/m (the checkpoint) and
# $tmp/f/NAME/m (its dequantized copy; the same last path component, so
# general.name is the same in both exports).
quantize() {
	local name=$1 src=$2
	shift 2
	mkdir -p "$tmp/q/$name" "$tmp/f/$name"
	ok "$name: hf-quantize" "${wrap[@]}" "$q" -m "$src" "$@" -o "$tmp/q/$name/m" &&
		ok "$name: hf-quantize --dequantize" "${wrap[@]}" "$q" -m "$tmp/q/$name/m" \
			--dequantize -o "$tmp/f/$name/m"
}

# same_exports NAME TYPES: GGUF at each of TYPES and ONNX, from the
# checkpoint and from its copy, equal.
same_exports() {
	local name=$1 types=$2 t a b f
	for t in $types; do
		a=$tmp/$name.q.$t.gguf b=$tmp/$name.f.$t.gguf
		ok "$name $t: hf-export" "${wrap[@]}" "$x" -m "$tmp/q/$name/m" \
			--type "$t" -o "$a" &&
		ok "$name $t: hf-export of the dequantized copy" "${wrap[@]}" "$x" \
			-m "$tmp/f/$name/m" --type "$t" -o "$b" &&
		check "$name $t: GGUF of the checkpoint = GGUF of its copy" \
			"$same_gguf" "$a" "$b"
		rm -f "$a" "$b"
	done
	a=$tmp/$name.q.onnx b=$tmp/$name.f.onnx
	ok "$name onnx: hf-export" "${wrap[@]}" "$x" -m "$tmp/q/$name/m" \
		--format onnx -o "$a" &&
	ok "$name onnx: hf-export of the dequantized copy" "${wrap[@]}" "$x" \
		-m "$tmp/f/$name/m" --format onnx -o "$b" || return
	cases=$((cases + 1))
	local files
	files=$(cd "$b" && find . -type f | sort)
	if [ "$(cd "$a" && find . -type f | sort)" != "$files" ]; then
		fail "$name onnx: other files: $(cd "$a" && find . -type f | sort | tr '\n' ' ')"
	elif [ "$(echo "$files" | grep -c '\.onnx$')" != 4 ]; then
		fail "$name onnx: want 4 variants, got: $files"
	else
		for f in $files; do
			cmp -s "$a/$f" "$b/$f" || fail "$name onnx: $f differs from the copy's"
		done
		echo "$name onnx: $(echo "$files" | wc -l) files identical" >&2
	fi
	rm -rf "$a" "$b"
}

# 1. llama-tiny in each format, gpt2-tiny (Conv1D) in fp4
quantize int8 "$FX/llama-tiny" --method int8 && same_exports int8 "f16 q8_0 q4_K"
quantize nf4 "$FX/llama-tiny" --method nf4 --double-quant &&
	same_exports nf4 "f16 q8_0 q4_K"
quantize bitnet "$FX/llama-tiny" --method bitnet && same_exports bitnet "f16 q8_0 q4_K"
quantize fp8 "$FX/llama-tiny" --method fp8 && same_exports fp8 "f16 q8_0 q4_K"
quantize gpt2-fp4 "$FX/gpt2-tiny" --method fp4 && same_exports gpt2-fp4 "f16 q4_0"
if "$q" -m "$FX/llama-tiny" --method gptq --calib "$calib" --seq-len 16 \
	--group-size 16 -o "$tmp/probe" 2>&1 </dev/null | grep -qF "not built"; then
	echo "# gptq is not built here: its case is skipped" >&2
else
	quantize gptq "$FX/llama-tiny" --method gptq --calib "$calib" --seq-len 16 \
		--group-size 16 --desc-act && same_exports gptq "f16 q8_0 q4_K"
fi
rm -rf "$tmp/probe"

# awq (gemm): hf-quantize writes none, so llama-tiny's linears are
# packed here as AutoAWQ does (docs/quantization-formats.md 4: its
# quantizer, qweight packed along the output in the order 0 2 4 6 1 3 5
# 7, group 32); hf-quantize --dequantize reads it
mkawq='
import json, os, struct, sys
src, out = sys.argv[1], sys.argv[2]
G = 32
b = open(os.path.join(src, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + n])
hdr.pop("__metadata__", None)
def floats(k):
    s, e = hdr[k]["data_offsets"]
    raw = b[8 + n + s:8 + n + e]
    assert hdr[k]["dtype"] == "BF16", hdr[k]["dtype"]
    return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
order = [0, 2, 4, 6, 1, 3, 5, 7]
tensors = {}
for k, v in hdr.items():
    s, e = v["data_offsets"]
    if not (k.endswith("_proj.weight") and ".layers." in k):
        tensors[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
        continue
    O, I = v["shape"]
    w = floats(k)
    q = [[0] * O for _ in range(I)]
    z = [[0] * O for _ in range(I // G)]
    sc = [[0.0] * O for _ in range(I // G)]
    for o in range(O):
        for g in range(I // G):
            xs = w[o * I + g * G:o * I + g * G + G]
            lo, hi = min(xs), max(xs)
            st = struct.unpack("<e", struct.pack("<e", max(hi - lo, 1e-5) / 15))[0]
            zz = min(max(-round(lo / st), 0), 15)
            sc[g][o], z[g][o] = st, zz
            for j, x in enumerate(xs):
                q[g * G + j][o] = min(max(round(x / st) + zz, 0), 15)
    def pack(rows):
        words = []
        for r in rows:
            for c in range(0, O, 8):
                wd = 0
                for p in range(8):
                    wd |= r[c + order[p]] << (4 * p)
                words.append(wd - (1 << 32) if wd >= 1 << 31 else wd)
        return struct.pack("<%di" % len(words), *words)
    base = k[:-len(".weight")]
    tensors[base + ".qweight"] = ("I32", [I, O // 8], pack(q))
    tensors[base + ".qzeros"] = ("I32", [I // G, O // 8], pack(z))
    tensors[base + ".scales"] = ("F16", [I // G, O],
                                 struct.pack("<%de" % (O * I // G), *[x for r in sc for x in r]))
os.makedirs(out)
h, data = {}, b""
for k, (dt, shape, raw) in tensors.items():
    h[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
hb = json.dumps(h).encode()
hb += b" " * (-len(hb) % 8)
open(os.path.join(out, "model.safetensors"), "wb").write(struct.pack("<Q", len(hb)) + hb + data)
cfg = json.load(open(os.path.join(src, "config.json")))
cfg["quantization_config"] = {"quant_method": "awq", "zero_point": True, "group_size": G,
                              "bits": 4, "version": "gemm", "modules_to_not_convert": None}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
'
mkdir -p "$tmp/q/awq" "$tmp/f/awq"
cases=$((cases + 1))
if ! python3 -c "$mkawq" "$FX/llama-tiny" "$tmp/q/awq/m" 2>"$tmp/err"; then
	fail "awq: packing llama-tiny: $(head -c 400 "$tmp/err")"
elif ok "awq: hf-quantize --dequantize" "${wrap[@]}" "$q" -m "$tmp/q/awq/m" \
	--dequantize -o "$tmp/f/awq/m"; then
	same_exports awq "f16 q8_0 q4_K"
fi

# 2. a BitNet checkpoint 256 wide (random weights made here: tiny
# fixtures' rows are not whole 256-element blocks) to the ternary types
mk256='
import json, os, random, struct, sys
out = sys.argv[1]
random.seed(3)
H, I, V = 256, 512, 256
os.makedirs(out)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
           "hidden_size": H, "intermediate_size": I, "num_hidden_layers": 1,
           "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": V,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": True,
           "hidden_act": "silu", "torch_dtype": "float32"},
          open(os.path.join(out, "config.json"), "w"))
t = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H],
     "model.layers.0.input_layernorm.weight": [H],
     "model.layers.0.post_attention_layernorm.weight": [H],
     "model.layers.0.self_attn.q_proj.weight": [H, H],
     "model.layers.0.self_attn.k_proj.weight": [H // 2, H],
     "model.layers.0.self_attn.v_proj.weight": [H // 2, H],
     "model.layers.0.self_attn.o_proj.weight": [H, H],
     "model.layers.0.mlp.gate_proj.weight": [I, H],
     "model.layers.0.mlp.up_proj.weight": [I, H],
     "model.layers.0.mlp.down_proj.weight": [H, I]}
hdr, data = {}, b""
for n, shape in t.items():
    k = shape[0] * (shape[1] if len(shape) > 1 else 1)
    v = [1.0 + random.gauss(0, 0.1) for _ in range(k)] if len(shape) == 1 else \
        [random.gauss(0, 0.05) for _ in range(k)]
    hdr[n] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * k]}
    data += struct.pack("<%df" % k, *v)
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(out, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + data)
'
ternary="$gguf_py"'
import json, struct, sys
g, d = sys.argv[1], sys.argv[2]
kv, ts = gguf(g)
b = open(d + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
hdr = json.loads(b[8:8 + n])
def raw(k):
    s, e = hdr[k]["data_offsets"]
    return b[8 + n + s:8 + n + e]
def scalar(k):
    dt, v = hdr[k]["dtype"], raw(k)
    if dt == "F32":
        return struct.unpack("<f", v[:4])[0]
    if dt == "BF16":
        return struct.unpack("<f", b"\0\0" + v[:2])[0]
    return struct.unpack("<e", v[:2])[0]
cfg = json.load(open(d + "/config.json"))
heads = {"attn_q": cfg["num_attention_heads"], "attn_k": cfg["num_key_value_heads"]}
names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
         "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
         "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
want_type = {"tq1_0": 34, "tq2_0": 35}[sys.argv[3]]
def trits_tq2(blk):
    qs = blk[:64]
    out = [0] * 256
    for grp in range(2):
        for j in range(32):
            for k in range(4):
                out[128 * grp + 32 * k + j] = ((qs[32 * grp + j] >> (2 * k)) & 3) - 1
    return out, struct.unpack("<e", blk[64:66])[0]
def trits_tq1(blk):
    qs, qh = blk[:48], blk[48:52]
    out = [0] * 256
    def trit(byte, k):
        return (((byte * 3 ** k) & 255) * 3 >> 8) - 1
    for m in range(32):
        for k in range(5):
            out[m + 32 * k] = trit(qs[m], k)
    for m in range(16):
        for k in range(5):
            out[160 + m + 16 * k] = trit(qs[32 + m], k)
    for j in range(4):
        for k in range(4):
            out[240 + j + 4 * k] = trit(qh[j], k)
    return out, struct.unpack("<e", blk[52:54])[0]
checked = 0
for hf, gg in names.items():
    base = "model.layers.0." + hf
    rows4, cols = hdr[base + ".weight"]["shape"]
    assert hdr[base + ".weight"]["dtype"] == "U8", base
    p = raw(base + ".weight")
    rows = 4 * rows4
    W = [[0] * cols for _ in range(rows)]
    for r in range(rows4):
        for c in range(cols):
            v = p[r * cols + c]
            for i in range(4):
                W[r + i * rows4][c] = ((v >> (2 * i)) & 3) - 1
    if gg in heads:
        hd = rows // heads[gg]
        P = []
        for h in range(heads[gg]):
            for i in range(hd // 2):
                P += [W[h * hd + i], W[h * hd + i + hd // 2]]
        W = P
    scale = scalar(base + ".weight_scale")
    if not cfg["quantization_config"].get("linear_class", "bitlinear") == "autobitlinear":
        scale = 1.0 / scale
    want_d = struct.unpack("<e", struct.pack("<e", scale))[0]
    t, ne, data = ts["blk.0.%s.weight" % gg]
    assert t == want_type, "%s: ggml type %d, want %d" % (gg, t, want_type)
    assert ne == [cols, rows], (gg, ne)
    bs = 66 if t == 35 else 54
    flat = [v for row in W for v in row]
    for bi in range(len(flat) // 256):
        got, dd = (trits_tq2 if t == 35 else trits_tq1)(data[bi * bs:(bi + 1) * bs])
        exp = flat[256 * bi:256 * (bi + 1)]
        if got != exp:
            e = next(i for i in range(256) if got[i] != exp[i])
            raise SystemExit("%s block %d element %d: trit %d, the checkpoint has %d" % (gg, bi, e, got[e], exp[e]))
        assert any(exp) == False or dd == want_d, "%s block %d: scale %r, want %r" % (gg, bi, dd, want_d)
        checked += 256
print("%d ternary weights of 7 linears carried over, scales f16(%g)" % (checked, want_d))
'
b256=$tmp/bitnet256
cases=$((cases + 1))
if ! python3 -c "$mk256" "$tmp/f256" 2>"$tmp/err"; then
	fail "bitnet256: making the model: $(head -c 400 "$tmp/err")"
elif quantize bitnet256 "$tmp/f256" --method bitnet; then
	for t in tq1_0 tq2_0; do
		ok "bitnet256 $t: hf-export" "${wrap[@]}" "$x" -m "$tmp/q/bitnet256/m" \
			--type "$t" -o "$tmp/bitnet256.$t.gguf" &&
			check "bitnet256 $t: ternary values kept" "$ternary" \
				"$tmp/bitnet256.$t.gguf" "$tmp/q/bitnet256/m" "$t"
		ok "bitnet256 $t: hf-export of the dequantized copy" "${wrap[@]}" "$x" \
			-m "$tmp/f/bitnet256/m" --type "$t" -o "$tmp/bitnet256.f.$t.gguf" &&
			check "bitnet256 $t: GGUF of the checkpoint = GGUF of its copy" \
				"$same_gguf" "$tmp/bitnet256.$t.gguf" "$tmp/bitnet256.f.$t.gguf"
		rm -f "$tmp/bitnet256.f.$t.gguf"
	done
fi

# 3. refusals
# the block check itself: a BitNet scale past f16's range cannot be a
# tq2_0 block's scale
cases=$((cases + 1))
if [ -d "$tmp/q/bitnet256/m" ]; then
	cp -r "$tmp/q/bitnet256" "$tmp/big-scale"
	python3 - "$tmp/big-scale/m/model.safetensors" <<-'EOF'
	import json, struct, sys
	b = bytearray(open(sys.argv[1], "rb").read())
	n = struct.unpack("<Q", b[:8])[0]
	t = json.loads(b[8:8 + n])["model.layers.0.mlp.up_proj.weight_scale"]
	assert t["dtype"] == "F32", t
	s = 8 + n + t["data_offsets"][0]
	b[s:s + 4] = struct.pack("<f", 1e6)
	open(sys.argv[1], "wb").write(b)
	EOF
	refused "bitnet scale past f16 to tq2_0" \
		"tensor 'blk.0.ffn_up.weight': BitNet scale 1e+06 has no f16 form for tq2_0" \
		"$tmp/r.gguf" "$x" -m "$tmp/big-scale/m" --type tq2_0 -o "$tmp/r.gguf"
fi
refused "nf4 to tq1_0" "a bitsandbytes nf4 double-quant checkpoint cannot be exported as tq1_0" \
	"$tmp/r.gguf" "$x" -m "$tmp/q/nf4/m" --type tq1_0 -o "$tmp/r.gguf"
refused "int8 to tq2_0" "a bitsandbytes int8 checkpoint cannot be exported as tq2_0" \
	"$tmp/r.gguf" "$x" -m "$tmp/q/int8/m" --type tq2_0 -o "$tmp/r.gguf"
refused "bitnet (rows of 64) to tq2_0" \
	"a bitnet checkpoint as tq2_0: 'model.layers.0." \
	"$tmp/r.gguf" "$x" -m "$tmp/q/bitnet/m" --type tq2_0 -o "$tmp/r.gguf"
grep -qF "would be q4_0, not tq2_0" "$tmp/err" ||
	fail "bitnet to tq2_0: the message does not name q4_0: $(cat "$tmp/err")"
mkdir -p "$tmp/hqq"
cp -r "$tmp/q/nf4/m" "$tmp/hqq/m"
python3 - "$tmp/hqq/m/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization_config"] = {"quant_method": "hqq", "nbits": 4}
json.dump(c, open(sys.argv[1], "w"))
EOF
refused "hqq to gguf" "hqq" "$tmp/r.gguf" "$x" -m "$tmp/hqq/m" --type q8_0 -o "$tmp/r.gguf"
refused "hqq to onnx" "hqq" "$tmp/r.onnx" "$x" -m "$tmp/hqq/m" --format onnx -o "$tmp/r.onnx"

# 4. llama.cpp on two of the exports, against hf-run on the checkpoints
case $(uname -m) in
x86_64) plat=linux-x64 ;;
aarch64) plat=linux-arm64 ;;
*) plat=unknown ;;
esac
LIBS=$RT/node_modules/@node-llama-cpp/$plat/bins/$plat
HDR=$RT/llama.cpp
lcpp=$tmp/llamacpp
if [ ! -d "$LIBS" ] || [ ! -f "$HDR/include/llama.h" ]; then
	echo "# llama.cpp runtime missing ($LIBS): its checks are skipped (scripts/bootstrap-runtimes)" >&2
	lcpp=
# shellcheck disable=SC2046
elif ! ${CC:-cc} -std=c11 -O2 -I"$HDR/include" -I"$HDR/ggml/include" \
	$(pkg-config --cflags jansson 2>/dev/null) \
	"$ROOT/test/runtimes/llamacpp.c" -o "$lcpp" -L"$LIBS" \
	-l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so \
	$(pkg-config --libs jansson 2>/dev/null || echo -ljansson) \
	-Wl,-rpath,"$LIBS" 2>"$tmp/cc.err"; then
	fail "compiling test/runtimes/llamacpp.c: $(head -c 2000 "$tmp/cc.err")"
	lcpp=
else
	export LLAMACPP_LIBS=$LIBS
	if ! LLAMACPP_BACKEND=$("$lcpp" backend 2>"$tmp/err"); then
		fail "llama.cpp loads no CPU backend from $LIBS: $(head -c 600 "$tmp/err")"
		lcpp=
	fi
	export LLAMACPP_BACKEND
fi

# compare LLAMACPP HFRUN BOUND: "abs:x" bounds the largest |difference|
# of the logits (and wants the same argmax everywhere), "rel:x" the RMS
# of the differences over the RMS of hf-run's logits.
compare='
import json, math, sys
kind, bound = sys.argv[3].split(":")
bound = float(bound)
a = [json.loads(l)["logits"] for l in open(sys.argv[1])]
b = [json.loads(l)["logits"] for l in open(sys.argv[2])]
assert len(a) == len(b) > 0, "%d records from llama.cpp, %d from hf-run" % (len(a), len(b))
worst, sd, sy, flips, n = 0.0, 0.0, 0.0, 0, 0
for ra, rb in zip(a, b):
    assert len(ra) == len(rb), (len(ra), len(rb))
    for x, y in zip(ra, rb):
        assert len(x) == len(y), (len(x), len(y))
        assert all(math.isfinite(u) for u in x), "llama.cpp gives a non-finite logit"
        worst = max([worst] + [abs(u - v) for u, v in zip(x, y)])
        sd += sum((u - v) ** 2 for u, v in zip(x, y))
        sy += sum(v * v for v in y)
        n += 1
        flips += max(range(len(x)), key=x.__getitem__) != max(range(len(y)), key=y.__getitem__)
rel = math.sqrt(sd / sy)
got = "max |diff| %.3g, relative RMS %.3g, argmax differs at %d of %d positions" % (worst, rel, flips, n)
assert (worst if kind == "abs" else rel) <= bound, "%s: over the bound %s %g" % (got, kind, bound)
assert kind != "abs" or flips == 0, got
print(got + "; bound %s %g" % (kind, bound))
'

# lc_vs_hf NAME GGUF CHECKPOINT BOUND ID_LISTS...
lc_vs_hf() {
	local name=$1 g=$2 m=$3 bound=$4 l
	shift 4
	: >"$tmp/in"
	for l in "$@"; do echo "{\"ids\": [$l]}" >>"$tmp/in"; done
	ok "$name: hf-run --task logits on the checkpoint" "${wrap[@]}" "$BIN/hf-run" \
		-m "$m" --jsonl --task logits <"$tmp/in" || return
	mv "$tmp/out" "$tmp/hf.jsonl"
	cases=$((cases + 1))
	if ! "$lcpp" logits "$g" "$@" >"$tmp/lc.jsonl" 2>"$tmp/err"; then
		fail "$name: llama.cpp logits: $(grep -v '^warning: \|WARNING\|^load' "$tmp/err" | head -c 600)"
		return
	fi
	check "$name: llama.cpp against hf-run" "$compare" "$tmp/lc.jsonl" "$tmp/hf.jsonl" "$bound"
}

if [ -n "$lcpp" ]; then
	# f32: llama.cpp computes on the very floats hf-run dequantizes, so
	# the fixtures' float32 bar (README: 1e-4 on logits) holds
	mapfile -t lists < <(python3 -c '
import json, sys
for p in json.load(open(sys.argv[1]))["prompts"]:
    print(",".join(map(str, p.get("input_ids", p.get("ids")))))' "$FX/llama-tiny/reference.json")
	ok "nf4 f32: hf-export" "${wrap[@]}" "$x" -m "$tmp/q/nf4/m" --type f32 \
		-o "$tmp/nf4.f32.gguf" &&
		lc_vs_hf "nf4 f32" "$tmp/nf4.f32.gguf" "$tmp/q/nf4/m" abs:1e-4 "${lists[@]}"
	# tq2_0: llama.cpp's ternary product rounds the activations to
	# 8-bit blocks (q8_K) and the tied embedding/output is Q6_K; measured
	# relative RMS 0.0285 (max |diff| 0.076, same argmax everywhere),
	# bound about twice that
	if [ -f "$tmp/bitnet256.tq2_0.gguf" ]; then
		lc_vs_hf "bitnet256 tq2_0" "$tmp/bitnet256.tq2_0.gguf" "$tmp/q/bitnet256/m" \
			rel:0.06 "1,5,9,200,33,7,18,250" "3,4,5"
	fi
fi

echo "export_quant: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
