#!/bin/bash
# e2e: hf-quantize on every model fixture by every method (int8, nf4, fp4,
# nf4 with double quant, bitnet, fp8, gptq where the build has it): the
# output is a complete model directory that hf-run runs, and its logits
# equal those of hf-quantize --dequantize of it within 1e-4 of the
# largest logit (the same numbers, stored as floats). The config's
# quantization_config, the tensors each method writes, sharding, --skip,
# and bad input (one clear line, a non-zero exit, nothing half-written)
# are checked too. Checks are python3 over the files, never our own
# earlier output.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
q=$BIN/hf-quantize
run=$BIN/hf-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# expect NAME RC FRAGMENT CMD...: exit status RC, and FRAGMENT (if not
# empty) in stdout for successes or in stderr for errors, which must then
# be one line (exit 1) or a line and the pointer to --help (exit 2).
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		return 1
	fi
	local where=$tmp/out
	[ "$want" = 0 ] || where=$tmp/err
	if [ -n "$frag" ] && ! grep -qF -- "$frag" "$where"; then
		fail "$name: '$frag' not in $(basename "$where"): $(head -c 400 "$where")"
		return 1
	fi
	if [ "$want" = 1 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
		fail "$name: want one line on stderr, got: $(cat "$tmp/err")"
		return 1
	fi
	if [ "$want" = 2 ] && [ "$(wc -l <"$tmp/err")" != 2 ]; then
		fail "$name: want a usage error, got: $(cat "$tmp/err")"
		return 1
	fi
	return 0
}

# check NAME PYTHON ARGS...: a python3 check; it prints why on failure.
check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$@" >"$tmp/why" 2>&1 ||
		fail "$name: $(head -c 600 "$tmp/why")"
}

# records FIXTURE: the prompts of its reference.json as {"ids"} records.
records() {
	python3 - "$FX/$1/reference.json" >"$tmp/in" <<-'EOF'
	import json, sys
	for p in json.load(open(sys.argv[1]))["prompts"]:
	    rec = {"ids": p["input_ids"]}
	    if "token_type_ids" in p:
	        rec["token_type_ids"] = p["token_type_ids"]
	    print(json.dumps(rec))
	EOF
}

# logits A B: the --task logits records of A and B agree within 1e-4 of
# the largest |logit| (float32 sums in a different order: ~1e-6).
compare='
import json, sys
def flat(p):
    return [x for l in open(p) for row in json.loads(l)["logits"] for x in row]
a, b = flat(sys.argv[1]), flat(sys.argv[2])
assert a and len(a) == len(b), (len(a), len(b))
top = max(abs(x) for x in a)
i, d = max(enumerate(abs(x - y) for x, y in zip(a, b)), key=lambda t: t[1])
assert d <= 1e-4 * top, "logit %d: %g vs %g (largest %g)" % (i, a[i], b[i], top)
'

# the tensors of a safetensors file (or a directory's shards): name ->
# (dtype, shape)
header='
import json, os, struct, sys
def tensors(d):
    files = [f for f in os.listdir(d)
             if f.startswith("model") and f.endswith(".safetensors")]
    out = {}
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            h = json.loads(fh.read(n))
        h.pop("__metadata__", None)
        out.update({k: (v["dtype"], v["shape"]) for k, v in h.items()})
    return out
'

# Calibration set for gptq: token ids, so that fixtures without a
# tokenizer can be calibrated.
python3 - >"$tmp/calib.jsonl" <<'EOF'
import json, random
random.seed(7)
for _ in range(8):
    print(json.dumps({"ids": [random.randrange(5, 256) for _ in range(32)]}))
EOF

# Whether a Vulkan device (lavapipe in CI) runs: then every quantized
# model runs there too.
vk=
if echo '{"ids": [5, 6]}' | "$run" -m "$FX/llama-tiny" --device vulkan \
	--jsonl --task logits >/dev/null 2>&1; then
	vk=1
else
	echo "# no Vulkan device: the quantized models run on the CPU only" >&2
fi

# GPTQ settings per width: a group size that divides every fixture's
# widths (48 and 64).
gptq_args="--calib $tmp/calib.jsonl --seq-len 16 --group-size 16"
have_gptq=1
: >"$tmp/in"
"$q" -m "$FX/llama-tiny" --method gptq $gptq_args -o "$tmp/probe" \
	>/dev/null 2>"$tmp/err" </dev/null
if grep -qF "not built" "$tmp/err"; then
	have_gptq=0
	expect "gptq not built" 1 "--method gptq is not built" \
		"$q" -m "$FX/llama-tiny" --method gptq $gptq_args -o "$tmp/probe"
fi
rm -rf "$tmp/probe"

methods="int8 nf4 fp4 nf4-dq bitnet fp8"
[ "$have_gptq" = 1 ] && methods="$methods gptq"

# 1. every fixture by every method
for dir in "$FX"/*/; do
	quick_skip "$dir" && continue
	fx=$(basename "$dir")
	[ -f "$dir/reference.json" ] || continue
	records "$fx"
	for m in $methods; do
		case $m in
		nf4-dq) args="--method nf4 --double-quant" ;;
		gptq) args="--method gptq $gptq_args" ;;
		*) args="--method $m" ;;
		esac
		out=$tmp/$fx-$m
		# gptq runs on the decoders its driver knows, whose widths
		# fill 32-bit words; others must say so in one line
		"$q" -m "$dir" $args -o "$out" >"$tmp/out" 2>"$tmp/err" </dev/null
		rc=$?
		cases=$((cases + 1))
		if [ "$m" = gptq ] && [ "$rc" = 1 ] &&
		   [ "$(wc -l <"$tmp/err")" = 1 ] && [ ! -e "$out" ] &&
		   grep -qE "layer by layer runs take decoders|does not divide its width" "$tmp/err"; then
			echo "$fx gptq: $(cat "$tmp/err")" >>"$tmp/gptq-refused"
			continue
		fi
		if [ "$rc" != 0 ] || [ "$(cat "$tmp/out")" != "$out" ]; then
			fail "$fx $m: exit $rc, stdout '$(cat "$tmp/out")': $(head -c 400 "$tmp/err")"
			continue
		fi
		expect "$fx $m: hf-run" 0 '"logits":[[' \
			"$run" -m "$out" --jsonl --task logits || continue
		mv "$tmp/out" "$tmp/q.jsonl"
		expect "$fx $m: --dequantize" 0 "$out-f" \
			"$q" -m "$out" --dequantize -o "$out-f" || continue
		expect "$fx $m: hf-run dequantized" 0 '"logits":[[' \
			"$run" -m "$out-f" --jsonl --task logits || continue
		check "$fx $m" "$tmp/q.jsonl" "$tmp/out" "$dir" "$out" "$out-f" \
			"$m" <<-EOF
		$compare
		$header
		src, qd, fd, m = sys.argv[3:7]
		for f in os.listdir(src):
		    if f.endswith(".json") and not f.startswith("reference"):
		        assert os.path.exists(os.path.join(qd, f)), "%s not copied" % f
		cfg = json.load(open(os.path.join(qd, "config.json")))
		qc = cfg["quantization_config"]
		fcfg = json.load(open(os.path.join(fd, "config.json")))
		assert "quantization_config" not in fcfg, "dequantized config is quantized"
		method = {"int8": "bitsandbytes", "nf4": "bitsandbytes",
		          "fp4": "bitsandbytes", "nf4-dq": "bitsandbytes"}.get(m, m)
		assert qc["quant_method"] == method, qc
		t, o, ft = tensors(src), tensors(qd), tensors(fd)
		assert set(ft) == set(t), sorted(set(ft) ^ set(t))
		# which linears became quantized: those with a layer index,
		# not the routers; never embeddings, norms, heads
		quant = sorted(k[:-7] for k in t if k.endswith(".weight") and o.get(k) != t[k])
		assert quant, "nothing was quantized"
		for k in quant:
		    assert any(p.isdigit() for p in k.split(".")), k
		    assert not any(w in k.lower() for w in ("embed", "norm", "lm_head")), k
		    assert not k.endswith(".gate"), k
		    assert ft[k + ".weight"] == ("F32", t[k + ".weight"][1]), (k, ft[k + ".weight"])
		if m == "int8":
		    assert qc["load_in_8bit"] is True and qc["llm_int8_threshold"] == 6.0, qc
		    for k in quant:
		        sh = t[k + ".weight"][1]
		        if cfg["model_type"] == "gpt2":
		            sh = sh[::-1]
		        assert o[k + ".weight"] == ("I8", sh), (k, o[k + ".weight"])
		        assert o[k + ".SCB"] == ("F32", [sh[0]]), k
		        assert o[k + ".weight_format"] == ("U8", []), k
		if m.startswith("nf4") or m == "fp4":
		    qt = "fp4" if m == "fp4" else "nf4"
		    assert qc["load_in_4bit"] is True and qc["bnb_4bit_quant_type"] == qt, qc
		    assert qc["bnb_4bit_use_double_quant"] == (m == "nf4-dq"), qc
		    assert qc["bnb_4bit_quant_storage"] == "uint8", qc
		    for k in quant:
		        assert k + ".weight.quant_state.bitsandbytes__" + qt in o, k
		        assert o[k + ".weight.quant_map"] == ("F32", [16]), k
		        am = o[k + ".weight.absmax"][0]
		        assert am == ("U8" if m == "nf4-dq" else "F32"), (k, am)
		        assert (k + ".weight.nested_absmax" in o) == (m == "nf4-dq"), k
		if m == "bitnet":
		    assert qc["linear_class"] == "autobitlinear", qc
		    for k in quant:
		        assert o[k + ".weight"][0] == "U8" and k + ".weight_scale" in o, k
		if m == "fp8":
		    assert qc["weight_block_size"] == [128, 128], qc
		    assert qc["activation_scheme"] == "dynamic", qc
		    for k in quant:
		        assert o[k + ".weight"][0] == "F8_E4M3", k
		        assert o[k + ".weight_scale_inv"][0] == "F32", k
		if m == "gptq":
		    assert qc["bits"] == 4 and qc["group_size"] == 16, qc
		    assert qc["format"] == qc["checkpoint_format"] == "gptq", qc
		    for k in quant:
		        assert o[k + ".qweight"][0] == "I32", k
		        assert o[k + ".scales"][0] == "F16", k
		EOF
		# the same quantized model on the Vulkan backend (lavapipe in
		# CI): its logits equal the CPU's within the same 1e-4
		# (on the fixtures that cover the layouts: plain, Conv1D, fused
		# qkv and gate_up row views, an encoder; mixtral: the Vulkan
		# backend stacks experts in float only, and says so)
		case $fx in
		llama-tiny|gpt2-tiny|phi3-tiny|qwen2-tiny|bert-tiny|mixtral-tiny) ;;
		*) rm -rf "$out" "$out-f"; continue ;;
		esac
		if [ -n "$vk" ] && [ "$fx" = mixtral-tiny ]; then
			expect "$fx $m: vulkan refuses" 1 "quantized experts run on the CPU only" \
				"$run" -m "$out" --device vulkan --jsonl --task logits
		elif [ -n "$vk" ] &&
		   expect "$fx $m: hf-run --device vulkan" 0 '"logits":[[' \
			"$run" -m "$out" --device vulkan --jsonl --task logits; then
			check "$fx $m: vulkan" "$tmp/out" "$tmp/q.jsonl" <<-EOF
			$compare
			EOF
		fi
		rm -rf "$out" "$out-f"
	done
done

# 2. mixtral's router stays float, and --skip keeps more
records llama-tiny
expect "--skip" 0 "$tmp/skip" "$q" -m "$FX/llama-tiny" --method int8 \
	--skip mlp.down_proj --skip self_attn.o -o "$tmp/skip" &&
check "--skip" "$FX/llama-tiny" "$tmp/skip" <<-EOF
$header
t, o = tensors(sys.argv[1]), tensors(sys.argv[2])
cfg = json.load(open(os.path.join(sys.argv[2], "config.json")))
assert cfg["quantization_config"]["llm_int8_skip_modules"] == \
    ["mlp.down_proj", "self_attn.o"], cfg["quantization_config"]
for k, v in t.items():
    if "down_proj" in k or "o_proj" in k:
        assert o[k] == v and k[:-7] + ".SCB" not in o, k
assert o["model.layers.0.mlp.up_proj.weight"][0] == "I8"
EOF
expect "--skip: hf-run" 0 '"logits":[[' "$run" -m "$tmp/skip" --jsonl --task logits
expect "mixtral router" 0 "$tmp/mx" "$q" -m "$FX/mixtral-tiny" --method nf4 \
	-o "$tmp/mx" &&
check "mixtral router" "$FX/mixtral-tiny" "$tmp/mx" <<-EOF
$header
t, o = tensors(sys.argv[1]), tensors(sys.argv[2])
gates = [k for k in t if k.endswith("block_sparse_moe.gate.weight")]
assert gates
for k in gates:
    assert o[k] == t[k], k
assert o["model.layers.0.block_sparse_moe.experts.0.w1.weight"][0] == "U8"
EOF

# 3. sharding: small shards and an index, which hf-run reads
expect "shards" 0 "$tmp/sh" "$q" -m "$FX/llama-tiny" --method nf4 \
	--max-shard-size 40K -o "$tmp/sh" &&
check "shards" "$tmp/sh" <<-'EOF'
import json, os, sys
d = sys.argv[1]
assert not os.path.exists(os.path.join(d, "model.safetensors"))
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
files = sorted(set(idx["weight_map"].values()))
assert len(files) > 1, files
n = len(files)
assert files == ["model-%05d-of-%05d.safetensors" % (i + 1, n) for i in range(n)], files
for f in files:
    assert os.path.getsize(os.path.join(d, f)) > 0
assert not [f for f in os.listdir(d) if "shard-" in f or ".tmp" in f], os.listdir(d)
EOF
expect "shards: hf-run" 0 '"logits":[[' "$run" -m "$tmp/sh" --jsonl --task logits &&
mv "$tmp/out" "$tmp/sh.jsonl"
expect "shards: one file" 0 "" "$q" -m "$FX/llama-tiny" --method nf4 -o "$tmp/one" &&
expect "shards: hf-run one" 0 '"logits":[[' "$run" -m "$tmp/one" --jsonl --task logits &&
check "shards: same logits" "$tmp/sh.jsonl" "$tmp/out" <<<"$compare"

# 4. -o -: one safetensors file on stdout
expect "-o -" 0 "" "$q" -m "$FX/llama-tiny" --method int8 -o - &&
check "-o -" "$tmp/out" <<-'EOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
assert h["model.layers.0.mlp.up_proj.weight"]["dtype"] == "I8", h
EOF

# 5. bad input: one line, a non-zero exit, nothing written
: >"$tmp/in"
mkdir -p "$tmp/exists"
echo '{}' >"$tmp/exists/config.json"
expect "unknown method" 2 "unknown method 'rtn'" \
	"$q" -m "$FX/llama-tiny" --method rtn -o "$tmp/bad"
expect "block size" 2 "--block-size 100 is not a power of two" \
	"$q" -m "$FX/llama-tiny" --method nf4 --block-size 100 -o "$tmp/bad"
expect "block size range" 2 "--block-size 16 is not a power of two in 32 .. 4096" \
	"$q" -m "$FX/llama-tiny" --method nf4 --block-size 16 -o "$tmp/bad"
expect "option of another method" 2 "--threshold is for --method int8, not nf4" \
	"$q" -m "$FX/llama-tiny" --method nf4 --threshold 5 -o "$tmp/bad"
expect "no method" 2 "--method is required" "$q" -m "$FX/llama-tiny" -o "$tmp/bad"
expect "no output" 2 "-o <dir> is required" "$q" -m "$FX/llama-tiny" --method int8
expect "gptq without --calib" 2 "--method gptq needs --calib <file>" \
	"$q" -m "$FX/llama-tiny" --method gptq -o "$tmp/bad"
expect "group size" 1 "group size 48 does not divide its width" \
	"$q" -m "$FX/llama-tiny" --method gptq --calib "$tmp/calib.jsonl" \
	--group-size 48 -o "$tmp/bad"
expect "missing model" 1 "model directory '$tmp/nope' does not exist" \
	"$q" -m "$tmp/nope" --method int8 -o "$tmp/bad"
expect "output exists" 1 "'$tmp/exists' exists; --force replaces it" \
	"$q" -m "$FX/llama-tiny" --method int8 -o "$tmp/exists"
check "output exists: untouched" "$tmp/exists" <<-'EOF'
import os, sys
assert os.listdir(sys.argv[1]) == ["config.json"], os.listdir(sys.argv[1])
EOF
mkdir -p "$tmp/notmodel"
echo keep >"$tmp/notmodel/file"
expect "--force on a non-model" 1 "is not a model directory; not replacing it" \
	"$q" -m "$FX/llama-tiny" --method int8 -o "$tmp/notmodel" --force
expect "--force" 0 "$tmp/exists" \
	"$q" -m "$FX/llama-tiny" --method int8 -o "$tmp/exists" --force &&
check "--force: replaced" "$tmp/exists" <<-'EOF'
import json, os, sys
assert "quantization_config" in json.load(open(os.path.join(sys.argv[1], "config.json")))
assert os.path.exists(os.path.join(sys.argv[1], "model.safetensors"))
EOF
expect "quantized already" 1 "is quantized already (bitsandbytes int8); --dequantize" \
	"$q" -m "$tmp/exists" --method nf4 -o "$tmp/bad"
expect "dequantize a float model" 1 "is not quantized" \
	"$q" -m "$FX/llama-tiny" --dequantize -o "$tmp/bad"
expect "--dequantize with --method" 2 "--dequantize and --method exclude each other" \
	"$q" -m "$tmp/exists" --dequantize --method int8 -o "$tmp/bad"
# bitnet packs 4 rows a byte: a model whose linear has 6 outputs
mkdir -p "$tmp/odd"
cp "$FX/llama-tiny/config.json" "$tmp/odd/"
python3 - "$tmp/odd/model.safetensors" <<'EOF'
import json, struct, sys
h = {"model.layers.0.mlp.down_proj.weight":
     {"dtype": "F32", "shape": [6, 8], "data_offsets": [0, 192]}}
b = json.dumps(h).encode()
b += b" " * (-len(b) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(b)) + b +
                              struct.pack("<48f", *range(48)))
EOF
expect "bitnet out % 4" 1 \
	"'model.layers.0.mlp.down_proj': BitNet packs 4 rows a byte; out (6) is not a multiple of 4" \
	"$q" -m "$tmp/odd" --method bitnet -o "$tmp/bad"
expect "odd shapes: other methods" 0 "$tmp/odd-q" \
	"$q" -m "$tmp/odd" --method nf4 -o "$tmp/odd-q"
[ -e "$tmp/bad" ] && fail "a failed run left '$tmp/bad'"
ls -d "$tmp"/*.tmp.* >/dev/null 2>&1 && fail "a temporary directory was left: $(ls -d "$tmp"/*.tmp.*)"
cases=$((cases + 2))

# 6. --help, and the hf quantize spelling
expect "--help" 0 "usage: hf-quantize -m <model> --method" "$q" --help
expect "hf quantize" 2 "unknown method 'x'" "$BIN/hf" quantize -m "$FX/llama-tiny" \
	--method x -o "$tmp/bad"

# gptq must have run on the Llama-family fixtures
if [ "$have_gptq" = 1 ]; then
	cases=$((cases + 1))
	grep -qE "^(llama-tiny|qwen2-tiny|mistral-tiny) " "$tmp/gptq-refused" 2>/dev/null &&
		fail "gptq refused a Llama-family fixture: $(cat "$tmp/gptq-refused")"
fi

echo "quantize: $cases cases, $failed failed (gptq: $have_gptq)" >&2
[ "$failed" = 0 ]
