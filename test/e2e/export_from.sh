#!/bin/bash
# e2e: hf-export --from, GGUF back into an HF model directory. Every
# decoder fixture and stories260k (and the encoders, and rope_scaling
# variants, below) goes HF -> GGUF (hf-export --format
# gguf at the fixture's own type, and scripts/bench/gguf.py, the Python
# writer that follows convert_hf_to_gguf.py, where it handles the model)
# -> HF, and the result must hold the same tensors bit for bit, the same
# config fields, give the same hf-run logits, and tokenize the tokenizer
# corpus to the same ids. Quantized GGUFs come back within a stated
# bound; malformed files are refused in one line with nothing left
# behind. Checks are python3 over the files, never our own earlier
# output.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ex=$BIN/hf-export
run=$BIN/hf-run
tok=$BIN/hf-tokenize
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
# empty) in stdout for successes or in the one line of stderr for errors.
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" </dev/null >"$tmp/out" 2>"$tmp/err"
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

# The safetensors of a directory: name -> (dtype, shape, bytes).
read_st='
import json, os, struct
def tensors(d):
    out = {}
    for f in os.listdir(d):
        if not (f.startswith("model") and f.endswith(".safetensors")):
            continue
        b = open(os.path.join(d, f), "rb").read()
        n = struct.unpack("<Q", b[:8])[0]
        h = json.loads(b[8:8 + n])
        h.pop("__metadata__", None)
        for k, v in h.items():
            s, e = v["data_offsets"]
            out[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
    return out
'

# same_tensors ORIG BACK: every tensor of ORIG (less the buffers the
# converter drops) is in BACK with the same dtype, shape and bytes, and
# BACK has nothing else. GPT-2's original files have no "transformer."
# prefix; save_pretrained (and --from) writes it.
same_tensors='
import sys
'"$read_st"'
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
def canon(k):
    return k[len("transformer."):] if k.startswith("transformer.") else k
a = {canon(k): v for k, v in a.items()
     if not k.endswith((".attn.bias", ".attn.masked_bias"))}
b = {canon(k): v for k, v in b.items()}
assert set(a) == set(b), ("only in the original:", sorted(set(a) - set(b))[:5],
                          "only in ours:", sorted(set(b) - set(a))[:5])
for k in sorted(a):
    assert a[k][:2] == b[k][:2], (k, a[k][:2], b[k][:2])
    if a[k][2] != b[k][2]:
        i = next(i for i in range(len(a[k][2])) if a[k][2][i] != b[k][2][i])
        raise AssertionError("%s: bytes differ from byte %d" % (k, i))
'

# same_config ORIG BACK: the hyperparameters a GGUF carries are equal
# (floats as float32, which is what the file holds).
same_config='
import json, struct, sys
a = json.load(open(sys.argv[1] + "/config.json"))
b = json.load(open(sys.argv[2] + "/config.json"))
keys = ["model_type", "architectures", "hidden_size", "intermediate_size",
        "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "head_dim", "rms_norm_eps", "rope_theta", "max_position_embeddings",
        "vocab_size", "tie_word_embeddings", "rope_scaling", "torch_dtype",
        "num_local_experts", "num_experts_per_tok", "n_embd", "n_head",
        "n_layer", "n_positions", "n_ctx", "layer_norm_epsilon",
        "original_max_position_embeddings", "hidden_activation"]
if a.get("tie_word_embeddings") is None:
    a["tie_word_embeddings"] = True
def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]
def same(x, y):
    if isinstance(x, dict) and isinstance(y, dict):
        return set(x) == set(y) and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (int, float)) and not isinstance(x, bool) and \
            isinstance(y, (int, float)) and not isinstance(y, bool):
        return f32(x) == f32(y)
    return x == y
for k in keys:
    if k in a and a[k] is not None:
        assert k in b, "%s missing (original %r)" % (k, a[k])
        assert same(a[k], b[k]), "%s: %r, original %r" % (k, b[k], a[k])
'

# prompts FIXTURE: its reference prompts as {"ids"} records.
prompts() {
	python3 - "$1/reference.json" >"$tmp/in" <<-'EOF'
	import json, sys
	r = json.load(open(sys.argv[1]))
	ps = r["prompts"]
	for p in ps:
	    print(json.dumps({"ids": p.get("input_ids") or p["ids"]}))
	EOF
}

# same_logits A B: hf-run --task logits of two directories, equal to the
# last bit (same weights, same code) or within BOUND of the largest
# |logit| when a third argument gives it.
same_logits() {
	local name=$1 a=$2 b=$3 bound=${4:-0}
	cases=$((cases + 1))
	if ! "$run" -m "$a" --jsonl --task logits <"$tmp/in" >"$tmp/la" \
		2>"$tmp/err" || ! "$run" -m "$b" --jsonl --task logits \
		<"$tmp/in" >"$tmp/lb" 2>>"$tmp/err"; then
		fail "$name: hf-run failed: $(head -c 400 "$tmp/err")"
		return
	fi
	python3 - "$tmp/la" "$tmp/lb" "$bound" >"$tmp/why" 2>&1 <<-'EOF' ||
	import json, sys
	def flat(p):
	    return [x for l in open(p) for row in json.loads(l)["logits"]
	            for x in row]
	a, b, bound = flat(sys.argv[1]), flat(sys.argv[2]), float(sys.argv[3])
	assert a and len(a) == len(b), (len(a), len(b))
	top = max(abs(x) for x in a)
	i, d = max(enumerate(abs(x - y) for x, y in zip(a, b)),
	           key=lambda t: t[1])
	assert d <= bound * top, "logit %d: %r vs %r (largest %g, bound %g)" % (
	    i, b[i], a[i], top, bound)
	print("largest difference %g of %g" % (d, top))
	EOF
		fail "$name: $(head -c 600 "$tmp/why")"
}

# same_ids NAME A B: hf-tokenize of the corpus gives the same ids with A
# and B, with and without special tokens.
same_ids() {
	local name=$1 a=$2 b=$3 flag
	for flag in "" --no-special; do
		cases=$((cases + 1))
		"$tok" -m "$a" --jsonl --ids-only $flag \
			<"$FX/tokenizers/corpus.jsonl" >"$tmp/ta" 2>"$tmp/err"
		"$tok" -m "$b" --jsonl --ids-only $flag \
			<"$FX/tokenizers/corpus.jsonl" >"$tmp/tb" 2>>"$tmp/err"
		if [ ! -s "$tmp/ta" ] || ! cmp -s "$tmp/ta" "$tmp/tb"; then
			fail "$name $flag: ids differ or failed: $(head -c 300 \
				"$tmp/err") $(diff "$tmp/ta" "$tmp/tb" | head -4)"
		fi
	done
}

# type_of DIR: the ggml type name of the fixture's own weights.
type_of() {
	python3 -c '
import json, sys
c = json.load(open(sys.argv[1] + "/config.json"))
d = c.get("torch_dtype") or c.get("dtype") or "float32"
print({"float32": "f32", "float16": "f16", "bfloat16": "bf16"}[d])' "$1"
}

# round_trip NAME DIR GGUF: --from GGUF must give back DIR exactly.
round_trip() {
	local name=$1 dir=$2 g=$3 back=$tmp/back-$1
	expect "$name: --from" 0 "$back" "$ex" --from "$g" -o "$back" ||
		return
	check "$name: tensors bit-exact" "$dir" "$back" <<<"$same_tensors"
	check "$name: config" "$dir" "$back" <<<"$same_config"
	prompts "$dir"
	same_logits "$name: logits" "$dir" "$back"
	if [ -f "$dir/tokenizer.json" ]; then
		same_ids "$name: tokenizer" "$dir" "$back"
	fi
}

# ---- every decoder fixture, through hf-export --format gguf ----

for dir in "$FX"/models/*-tiny* "$MODELS/stories260k"; do
	quick_skip "$dir" && continue
	name=$(basename "$dir")
	case $name in bert-* | roberta-* | distilbert-*) continue ;; esac
	t=$(type_of "$dir")
	expect "$name: export $t" 0 "" "$ex" -m "$dir" --type "$t" \
		-o "$tmp/$name.gguf" || continue
	round_trip "$name" "$dir" "$tmp/$name.gguf"
done

# ---- the Python writer's files (llama permutation, qwen2 biases) ----

for name in llama-tiny-untied qwen2-tiny; do
	dir=$FX/models/$name
	expect "$name: gguf.py" 0 "" python3 "$SRC/scripts/bench/gguf.py" \
		"$dir" "$tmp/py-$name.gguf" || continue
	round_trip "py-$name" "$dir" "$tmp/py-$name.gguf"
done

# ---- byte-level BPE vocabularies: a fixture's tokenizer in a model ----

for t in gpt2 qwen3 llama3_1; do
	d=$tmp/tokmodel-$t
	mkdir -p "$d"
	cp "$FX/models/qwen2-tiny/config.json" "$d/"
	cp "$FX/tokenizers/$t/tokenizer.json" "$d/"
	# qwen2-tiny's weights with the embedding grown to the tokenizer's
	# vocabulary (rows repeated): only the vocabulary is under test
	python3 - "$FX/models/qwen2-tiny" "$d" <<-'EOF'
	import json, struct, sys
	src, dst = sys.argv[1:3]
	tj = json.load(open(dst + "/tokenizer.json"))
	v = 1 + max(list(tj["model"]["vocab"].values()) +
	            [a["id"] for a in tj["added_tokens"]])
	b = open(src + "/model.safetensors", "rb").read()
	n = struct.unpack("<Q", b[:8])[0]
	h = json.loads(b[8:8 + n])
	h.pop("__metadata__", None)
	data = {k: b[8 + n + e["data_offsets"][0]:8 + n + e["data_offsets"][1]]
	        for k, e in h.items()}
	emb = "model.embed_tokens.weight"
	rows, cols = h[emb]["shape"]
	row = len(data[emb]) // rows
	data[emb] = b"".join(data[emb][(i % rows) * row:(i % rows + 1) * row]
	                     for i in range(v))
	h[emb]["shape"] = [v, cols]
	out, off = {}, 0
	for k in sorted(data):
	    out[k] = {"dtype": h[k]["dtype"], "shape": h[k]["shape"],
	              "data_offsets": [off, off + len(data[k])]}
	    off += len(data[k])
	hdr = json.dumps(out).encode()
	hdr += b" " * (-len(hdr) % 8)
	with open(dst + "/model.safetensors", "wb") as f:
	    f.write(struct.pack("<Q", len(hdr)) + hdr)
	    for k in sorted(data):
	        f.write(data[k])
	c = json.load(open(dst + "/config.json"))
	c["vocab_size"] = v
	json.dump(c, open(dst + "/config.json", "w"))
	EOF
	[ -f "$FX/tokenizers/$t/tokenizer_config.json" ] &&
		cp "$FX/tokenizers/$t/tokenizer_config.json" "$d/"
	expect "tokenizer $t: export" 0 "" "$ex" -m "$d" --type bf16 \
		-o "$tmp/tok-$t.gguf" || continue
	expect "tokenizer $t: --from" 0 "" "$ex" --from "$tmp/tok-$t.gguf" \
		-o "$tmp/tokback-$t" || continue
	same_ids "tokenizer $t" "$d" "$tmp/tokback-$t"
done

# ---- rope_scaling: Phi-3's LongRoPE factors (rope_factors_long/short
# tensors, rope.scaling.attn_factor) and YaRN's keys come back ----

mkrope='
import json, shutil, sys
src, dst, kind = sys.argv[1:4]
shutil.copytree(src, dst)
c = json.load(open(dst + "/config.json"))
if kind == "longrope":
    c["max_position_embeddings"] = 16384
    c["rope_scaling"] = {"type": "longrope",
                         "long_factor": [1.0, 1.25, 1.5, 2.0, 3.5, 4.0],
                         "short_factor": [1.0, 1.0, 1.125, 1.25, 1.5, 1.75]}
else:
    c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0,
                         "original_max_position_embeddings": 32,
                         "beta_fast": 16.0, "beta_slow": 2.0,
                         "attention_factor": 1.25}
json.dump(c, open(dst + "/config.json", "w"))
'
for r in "phi3-tiny longrope" "llama-tiny yarn"; do
	set -- $r
	d=$tmp/rope-$2
	cases=$((cases + 1))
	python3 -c "$mkrope" "$FX/models/$1" "$d" "$2" ||
		{ fail "rope $2: making the model"; continue; }
	expect "rope $2: export" 0 "" "$ex" -m "$d" --type "$(type_of "$d")" \
		-o "$tmp/rope-$2.gguf" || continue
	round_trip "rope-$2" "$d" "$tmp/rope-$2.gguf"
	rm -rf "$d" "$tmp/back-rope-$2" "$tmp/rope-$2.gguf"
done

# ---- encoders: bert, roberta, distilbert (all "bert" in the file) ----

# The converter drops the heads (pooler, MLM), so --from gives the base
# model (BertModel, RobertaModel, DistilBertModel): every tensor of it
# bit-exact, except RoBERTa's pad_token_id + 1 first position rows, which
# no position uses and the converter leaves out (they come back zero);
# the config fields; hf-run's embeddings equal to the last bit.
same_encoder='
import json, sys
'"$read_st"'
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
heads = ("cls.", "lm_head.", "vocab_", "bert.pooler.", "roberta.pooler.")
a = {k: v for k, v in a.items() if not k.startswith(heads) and
     not k.endswith("position_ids")}
assert set(a) == set(b), ("only in the original:", sorted(set(a) - set(b))[:5],
                          "only in ours:", sorted(set(b) - set(a))[:5])
c = json.load(open(sys.argv[1] + "/config.json"))
for k in sorted(a):
    assert a[k][:2] == b[k][:2], (k, a[k][:2], b[k][:2])
    x, y = a[k][2], b[k][2]
    if c["model_type"] == "roberta" and k.endswith("position_embeddings.weight"):
        row = len(x) // a[k][1][0]
        skip = (c["pad_token_id"] + 1) * row
        assert y[:skip] == bytes(skip), "%s: dropped rows not zero" % k
        x, y = x[skip:], y[skip:]
    if x != y:
        i = next(i for i in range(len(x)) if x[i] != y[i])
        raise AssertionError("%s: bytes differ from byte %d" % (k, i))
b = json.load(open(sys.argv[2] + "/config.json"))
keys = ["model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "layer_norm_eps", "max_position_embeddings",
        "vocab_size", "type_vocab_size", "pad_token_id", "hidden_act",
        "torch_dtype", "dim", "hidden_dim", "n_layers", "n_heads", "activation"]
for k in keys:
    if k in c:
        assert k in b and (b[k] == c[k] or abs(b[k] - c[k]) <= 1e-7 * abs(c[k])), (k, b.get(k), c[k])
'
same_embed() {
	local name=$1 a=$2 b=$3
	cases=$((cases + 1))
	if ! "$run" -m "$a" --jsonl --task embed <"$tmp/in" >"$tmp/ea" \
		2>"$tmp/err" || ! "$run" -m "$b" --jsonl --task embed \
		<"$tmp/in" >"$tmp/eb" 2>>"$tmp/err"; then
		fail "$name: hf-run failed: $(head -c 400 "$tmp/err")"
	elif [ ! -s "$tmp/ea" ] || ! cmp -s "$tmp/ea" "$tmp/eb"; then
		fail "$name: embeddings differ: $(diff "$tmp/ea" "$tmp/eb" | head -c 300)"
	fi
}
# a float32 fixture's weights as float16 / bfloat16 (round to nearest
# even), so that those types can come back bit-exact too
to_dtype='
import json, os, shutil, struct, sys
src, dst, dt = sys.argv[1:4]
shutil.copytree(src, dst)
p = dst + "/model.safetensors"
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
meta = h.pop("__metadata__", None)
out, data, off = {}, [], 0
for k in sorted(h):
    s, e = h[k]["data_offsets"]
    f = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    if dt == "F16":
        raw = struct.pack("<%de" % len(f), *f)
    else:
        u = struct.unpack("<%dI" % len(f), struct.pack("<%df" % len(f), *f))
        raw = struct.pack("<%dH" % len(f), *(((x + 0x7fff + ((x >> 16) & 1)) >> 16) for x in u))
    out[k] = {"dtype": dt, "shape": h[k]["shape"], "data_offsets": [off, off + len(raw)]}
    data.append(raw)
    off += len(raw)
hdr = json.dumps(out).encode()
hdr += b" " * (-len(hdr) % 8)
open(p, "wb").write(struct.pack("<Q", len(hdr)) + hdr + b"".join(data))
c = json.load(open(dst + "/config.json"))
c["torch_dtype"] = {"F16": "float16", "BF16": "bfloat16"}[dt]
json.dump(c, open(dst + "/config.json", "w"))
'
for e in "bert-tiny f32" "roberta-tiny f32" "distilbert-tiny f32" \
	"bert-tiny f16" "bert-tiny bf16"; do
	set -- $e
	quick_skip "$FX/models/$1" && continue
	d=$FX/models/$1
	if [ "$2" != f32 ]; then
		d=$tmp/enc-$1-$2
		cases=$((cases + 1))
		python3 -c "$to_dtype" "$FX/models/$1" "$d" \
			"$(echo "$2" | tr a-z A-Z)" || { fail "$1 $2: converting"; continue; }
	fi
	g=$tmp/enc-$1-$2.gguf
	expect "$1 $2: export" 0 "" "$ex" -m "$d" --type "$2" -o "$g" || continue
	expect "$1 $2: --from" 0 "" "$ex" --from "$g" -o "$tmp/encback-$1-$2" ||
		continue
	check "$1 $2: tensors and config" "$d" "$tmp/encback-$1-$2" <<<"$same_encoder"
	prompts "$FX/models/$1"
	same_embed "$1 $2: embeddings" "$d" "$tmp/encback-$1-$2"
	rm -rf "$g" "$tmp/encback-$1-$2" "$tmp/enc-$1-$2"
done

# a WordPiece vocabulary ("bert" in the file, llama.cpp's phantom-space
# form) back into BERT's tokenizer.json: bert-base-uncased's tokenizer in
# a one-layer bert made for it (zero weights)
mkbert='
import json, os, struct, sys
src, out = sys.argv[1], sys.argv[2]
tok = json.load(open(os.path.join(src, "tokenizer.json")))
V, H, I = 1 + max(list(tok["model"]["vocab"].values()) +
                  [a["id"] for a in tok["added_tokens"]]), 16, 32
os.makedirs(out)
open(os.path.join(out, "tokenizer.json"), "wb").write(
    open(os.path.join(src, "tokenizer.json"), "rb").read())
json.dump({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": H,
           "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": I,
           "vocab_size": V, "max_position_embeddings": 64, "type_vocab_size": 2,
           "layer_norm_eps": 1e-12, "hidden_act": "gelu", "pad_token_id": 0},
          open(os.path.join(out, "config.json"), "w"))
t = {"bert.embeddings.word_embeddings.weight": [V, H],
     "bert.embeddings.position_embeddings.weight": [64, H],
     "bert.embeddings.token_type_embeddings.weight": [2, H],
     "bert.embeddings.LayerNorm.weight": [H], "bert.embeddings.LayerNorm.bias": [H]}
p = "bert.encoder.layer.0."
for n, o, i in (("attention.self.query", H, H), ("attention.self.key", H, H),
                ("attention.self.value", H, H), ("attention.output.dense", H, H),
                ("intermediate.dense", I, H), ("output.dense", H, I)):
    t[p + n + ".weight"] = [o, i]
    t[p + n + ".bias"] = [o]
for n in ("attention.output.LayerNorm", "output.LayerNorm"):
    t[p + n + ".weight"] = [H]
    t[p + n + ".bias"] = [H]
hdr, off = {}, 0
for n, shape in t.items():
    k = 4 * shape[0] * (shape[1] if len(shape) > 1 else 1)
    hdr[n] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + k]}
    off += k
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bytes(off))
'
cases=$((cases + 1))
if python3 -c "$mkbert" "$FX/tokenizers/bert-base-uncased" "$tmp/tokbert"; then
	expect "tokenizer bert-base-uncased: export" 0 "" "$ex" -m "$tmp/tokbert" \
		--type f32 -o "$tmp/tokbert.gguf" &&
	expect "tokenizer bert-base-uncased: --from" 0 "" "$ex" --from \
		"$tmp/tokbert.gguf" -o "$tmp/tokbert-back" &&
	same_ids "tokenizer bert-base-uncased" "$tmp/tokbert" "$tmp/tokbert-back"
	rm -rf "$tmp/tokbert" "$tmp/tokbert.gguf" "$tmp/tokbert-back"
else
	fail "tokenizer bert-base-uncased: making its model"
fi

# ---- --dtype ----

st=$MODELS/stories260k
if [ -f "$tmp/stories260k.gguf" ]; then
	expect "--dtype bf16" 0 "" "$ex" --from "$tmp/stories260k.gguf" \
		-o "$tmp/st-bf16" --dtype bf16
	check "--dtype bf16: bf16 of the f32 weights" "$st" "$tmp/st-bf16" \
		<<<"$read_st"'
import struct, sys
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
def bf16(f):  # round to nearest even, as torch .to(bfloat16)
    u = struct.unpack("<I", struct.pack("<f", f))[0]
    return (u + 0x7fff + ((u >> 16) & 1)) >> 16
for k, (dt, shape, raw) in a.items():
    assert b[k][0] == "BF16" and b[k][1] == shape, (k, b[k][:2])
    fs = struct.unpack("<%df" % (len(raw) // 4), raw)
    want = struct.pack("<%dH" % len(fs), *(bf16(f) for f in fs))
    assert b[k][2] == want, k
c = __import__("json").load(open(sys.argv[2] + "/config.json"))
assert c["torch_dtype"] == "bfloat16", c["torch_dtype"]'
	prompts "$st"
	# bf16 weights: each has a relative error <= 2^-9; logits move by
	# about that times sqrt(fan-in) in relative terms, far under 5e-2
	same_logits "--dtype bf16: logits" "$st" "$tmp/st-bf16" 5e-2
	expect "--dtype bad" 2 "'f8'" "$ex" --from \
		"$tmp/stories260k.gguf" -o "$tmp/st-bad" --dtype f8
	[ -e "$tmp/st-bad" ] && fail "--dtype bad: left '$tmp/st-bad'"
fi

# ---- quantized files: dequantized, within a stated bound ----

# Each weight comes back within its block's rounding step: q8_0 keeps
# x / d in [-127, 127] with d = amax / 127 (error <= d / 2, d itself
# rounded to f16: amax / 200 covers both); q4_0 keeps x / d in [-8, 7]
# with d = -amax / 8 (error <= |d| / 2, or |d| = amax / 8 where 8
# clips to 7: amax / 7 covers it).
# The block's amax is at most the tensor's. These random 2-layer models
# amplify weight noise: q8_0 logits stay within 0.1 of the largest.
for q in "q8_0 200 0.1" "q4_0 7 -"; do
	set -- $q
	expect "llama-tiny $1: export" 0 "" "$ex" -m "$FX/models/llama-tiny" \
		--type "$1" -o "$tmp/q-$1.gguf" || continue
	expect "llama-tiny $1: --from" 0 "" "$ex" --from "$tmp/q-$1.gguf" \
		-o "$tmp/qback-$1" || continue
	check "llama-tiny $1: weights within a step" "$FX/models/llama-tiny" \
		"$tmp/qback-$1" "$2" <<<"$read_st"'
import struct, sys
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
div = float(sys.argv[3])
def vals(t):
    dt, shape, raw = t
    if dt == "F32":
        return struct.unpack("<%df" % (len(raw) // 4), raw)
    assert dt == "BF16", dt
    return [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0]
            for i in range(0, len(raw), 2)]
for k in a:
    assert b[k][0] == "F32" and b[k][1] == a[k][1], (k, b[k][:2])
    x, y = vals(a[k]), vals(b[k])
    amax = max(abs(v) for v in x)
    i, d = max(enumerate(abs(p - q) for p, q in zip(x, y)),
               key=lambda t: t[1])
    assert d <= amax / div, "%s[%d]: %r vs %r (amax %g)" % (k, i, y[i],
                                                          x[i], amax)'
	if [ "$3" != - ]; then
		prompts "$FX/models/llama-tiny"
		same_logits "llama-tiny $1: logits" "$FX/models/llama-tiny" \
			"$tmp/qback-$1" "$3"
	fi
done

# ---- bad input: one line naming the file, nothing left behind ----

g=$tmp/stories260k.gguf
if [ -f "$g" ]; then
	head -c 1000 "$g" >"$tmp/trunc.gguf"
	expect "truncated" 1 "trunc.gguf" "$ex" --from "$tmp/trunc.gguf" \
		-o "$tmp/bad1"
	{ printf 'GGUX'; tail -c +5 "$g"; } >"$tmp/magic.gguf"
	expect "bad magic" 1 "not a GGUF file" "$ex" --from "$tmp/magic.gguf" \
		-o "$tmp/bad2"
	# the first tensor's offset (the last 8 bytes of its info) far out
	python3 - "$g" "$tmp/oob.gguf" <<-'EOF'
	import struct, sys
	b = bytearray(open(sys.argv[1], "rb").read())
	name = b"token_embd.weight"
	i = b.index(struct.pack("<Q", len(name)) + name) + 8 + len(name)
	nd = struct.unpack_from("<I", b, i)[0]
	struct.pack_into("<Q", b, i + 4 + 8 * nd + 4, 1 << 40)
	open(sys.argv[2], "wb").write(b)
	EOF
	expect "offset out of bounds" 1 "past the end" "$ex" --from \
		"$tmp/oob.gguf" -o "$tmp/bad3"
	python3 - "$g" "$tmp/count.gguf" <<-'EOF'
	import struct, sys
	b = bytearray(open(sys.argv[1], "rb").read())
	struct.pack_into("<Q", b, 16, 1 << 60)  # metadata_kv_count
	open(sys.argv[2], "wb").write(b)
	EOF
	expect "absurd count" 1 "metadata pairs claimed" "$ex" --from \
		"$tmp/count.gguf" -o "$tmp/bad4"
	mkdir -p "$tmp/exists"
	expect "output exists" 1 "--force" "$ex" --from "$g" -o "$tmp/exists"
	expect "--force replaces" 0 "" "$ex" --from "$g" -o "$tmp/exists" \
		--force
	[ -f "$tmp/exists/config.json" ] || fail "--force: no config.json"
	for n in 1 2 3 4; do
		ls -d "$tmp/bad$n"* >/dev/null 2>&1 &&
			fail "bad input $n left $(ls -d "$tmp/bad$n"*)"
	done
fi
expect "missing file" 1 "nope.gguf" "$ex" --from "$tmp/nope.gguf" \
	-o "$tmp/bad5"
expect "--from with -m" 2 "" "$ex" --from "$g" -m "$st" -o "$tmp/bad7"

echo "export_from: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
