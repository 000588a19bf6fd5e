#!/bin/bash
# e2e: hf-export --format gguf on every model fixture and stories260k at
# every type: each file is read back by a GGUF parser of this script's
# own (python3), which checks the container (version, alignment, offsets,
# sizes), the metadata the converter writes, the tensor names and types,
# and, for f32/f16/bf16, every tensor's values against the safetensors
# with the converter's changes redone here from docs/onnx-gguf-export.md
# (Q/K permutation, Conv1D transpose, Gemma's w + 1, RoBERTa's position
# rows, Mixtral's stacked experts). Then -o -, and bad input: an unknown
# type, an existing -o without --force, an architecture with no table, a
# tensor with no name, a quantized checkpoint, an interrupted export
# (nothing left behind), --help. Whether llama.cpp runs the files is
# export_llamacpp.sh's.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
x=$BIN/hf-export
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
	if [ "$want" = 2 ] && [ "$(wc -l <"$tmp/err")" != 2 ]; then
		fail "$name: want a usage error, got: $(cat "$tmp/err")"
		return 1
	fi
	return 0
}

cat >"$tmp/check.py" <<'EOF'
# check.py FILE.gguf MODEL_DIR TYPE: the GGUF file against the model.
import json, math, os, re, struct, sys

path, mdir, typ = sys.argv[1:4]
F32, F16, BF16 = 0, 1, 30
# ggml type -> (elements, bytes) a block
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20),
         6: (32, 22), 7: (32, 24), 8: (32, 34), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 34: (256, 54), 35: (256, 66)}
FTYPE = {"f32": (0, F32), "f16": (1, F16), "bf16": (32, BF16),
         "q8_0": (7, 8), "q4_0": (2, 2), "q4_1": (3, 3), "q5_0": (8, 6),
         "q5_1": (9, 7), "q4_K": (15, 12), "q5_K": (17, 13),
         "q6_K": (18, 14), "tq1_0": (36, 34), "tq2_0": (37, 35)}

buf = open(path, "rb").read()
pos = 0
def take(fmt):
    global pos
    v = struct.unpack_from("<" + fmt, buf, pos)
    pos += struct.calcsize("<" + fmt)
    return v[0]
def string():
    global pos
    n = take("Q")
    s = buf[pos:pos + n]
    pos += n
    return s.decode("utf-8")
SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
          10: "Q", 11: "q", 12: "d"}
def value(t):
    if t == 8:
        return string()
    if t == 9:
        e, n = take("I"), take("Q")
        return [value(e) for _ in range(n)]
    return take(SCALAR[t])

assert take("I") == 0x46554747, "bad magic"
assert take("I") == 3, "not version 3"
nt, nkv = take("Q"), take("Q")
kv, kvtype = {}, {}
for _ in range(nkv):
    k = string()
    t = take("I")
    assert k not in kv, "key %s twice" % k
    kv[k], kvtype[k] = value(t), t
tensors = []
for _ in range(nt):
    name = string()
    nd = take("I")
    ne = [take("Q") for _ in range(nd)]
    tensors.append((name, ne, take("I"), take("Q")))
align = kv.get("general.alignment", 32)
assert align == 32 and kvtype["general.alignment"] == 4, "alignment"
start = (pos + align - 1) // align * align
assert not any(buf[pos:start]), "header padding is not zeros"
end = 0
for name, ne, t, off in sorted(tensors, key=lambda x: x[3]):
    assert len(name) <= 63, name
    assert off % align == 0, "%s at offset %d" % (name, off)
    assert off >= end, "%s overlaps the tensor before" % name
    el, by = BLOCK[t]
    assert ne[0] % el == 0, "%s: ne[0] %d, type %d" % (name, ne[0], t)
    size = ne[0] // el * by * math.prod(ne[1:])
    end = off + size
    assert not any(buf[start + end:start + (end + align - 1) // align * align]), name
    end = (end + align - 1) // align * align
assert len(buf) == start + end, "file is %d bytes, want %d" % (len(buf), start + end)
T = {n: (ne, t, off) for n, ne, t, off in tensors}
assert len(T) == len(tensors), "a tensor name twice"

cfg = json.load(open(os.path.join(mdir, "config.json")))
mt = cfg["model_type"]
arch = {"mistral": "llama", "mixtral": "llama", "roberta": "bert",
        "distilbert": "bert"}.get(mt, mt)
ftype, base = FTYPE[typ]
assert kv["general.architecture"] == arch, kv["general.architecture"]
assert kv["general.file_type"] == ftype, kv["general.file_type"]
assert kv["general.quantization_version"] == 2
def key(k):
    return kv.get(arch + "." + k)
hidden = cfg.get("hidden_size", cfg.get("n_embd", cfg.get("dim")))
layers = cfg.get("num_hidden_layers", cfg.get("n_layer", cfg.get("n_layers")))
heads = cfg.get("num_attention_heads", cfg.get("n_head", cfg.get("n_heads")))
assert key("block_count") == layers
assert key("embedding_length") == hidden
assert key("attention.head_count") == heads
if arch in ("llama", "qwen2", "qwen3", "gemma", "phi3"):
    assert key("attention.head_count_kv") == cfg.get("num_key_value_heads", heads)
    assert abs(key("attention.layer_norm_rms_epsilon") - cfg["rms_norm_eps"]) < 1e-12
if arch == "llama":
    assert key("rope.dimension_count") == cfg.get("head_dim", hidden // heads)
    assert key("vocab_size") == cfg["vocab_size"]
if "head_dim" in cfg and arch != "gpt2":
    assert key("attention.key_length") == cfg["head_dim"]
if mt == "mixtral":
    assert key("expert_count") == cfg["num_local_experts"]
    assert key("expert_used_count") == cfg["num_experts_per_tok"]
if arch == "gpt2":
    assert key("feed_forward_length") == 4 * hidden
if arch == "bert":
    assert key("attention.causal") is False
    assert "tokenizer.ggml.token_type_count" in kv
if mt == "roberta":
    assert key("context_length") == cfg["max_position_embeddings"] - cfg["pad_token_id"] - 1
if os.path.exists(os.path.join(mdir, "tokenizer.json")):
    assert kv["tokenizer.ggml.model"] == "llama", kv["tokenizer.ggml.model"]
    assert len(kv["tokenizer.ggml.tokens"]) == cfg["vocab_size"]
    assert len(kv["tokenizer.ggml.scores"]) == cfg["vocab_size"]
    assert kv["tokenizer.ggml.bos_token_id"] == 1
else:
    assert kv["tokenizer.ggml.model"] == "none"
    assert "tokenizer.ggml.tokens" not in kv

# the safetensors
st = {}
for f in sorted(os.listdir(mdir)):
    if not (f.startswith("model") and f.endswith(".safetensors")):
        continue
    b = open(os.path.join(mdir, f), "rb").read()
    n = struct.unpack_from("<Q", b)[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    for k, v in h.items():
        s, e = v["data_offsets"]
        st[k] = (v["dtype"], v["shape"], b[8 + n + s:8 + n + e])
def floats(k):
    dt, shape, raw = st[k]
    if dt == "F32":
        return list(struct.unpack("<%df" % (len(raw) // 4), raw)), shape
    if dt == "F16":
        return list(struct.unpack("<%de" % (len(raw) // 2), raw)), shape
    assert dt == "BF16", dt
    u = struct.unpack("<%dH" % (len(raw) // 2), raw)
    return [struct.unpack("<f", struct.pack("<I", x << 16))[0] for x in u], shape

# GGUF name -> HF name, per architecture (B3 and llama.cpp's tensor_mapping)
pre = {"gpt2": "", "bert": "bert.", "roberta": "roberta.", "distilbert": "distilbert."}.get(mt, "")
if mt == "gpt2" and any(k.startswith("transformer.") for k in st):
    pre = "transformer."
if mt in ("bert", "roberta", "distilbert") and not any(k.startswith(pre) for k in st):
    pre = ""
G = {"token_embd": "model.embed_tokens", "output_norm": "model.norm",
     "output": "lm_head", "attn_norm": "input_layernorm",
     "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
     "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
     "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
     "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj",
     "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
     "ffn_gate_inp": "block_sparse_moe.gate", "attn_qkv": "self_attn.qkv_proj"}
if mt == "phi3":
    G["ffn_up"] = "mlp.gate_up_proj"
EXP = {"ffn_gate_exps": "w1", "ffn_down_exps": "w2", "ffn_up_exps": "w3"}
if mt == "gpt2":
    G = {"token_embd": "wte", "position_embd": "wpe", "output_norm": "ln_f",
         "attn_norm": "ln_1", "attn_qkv": "attn.c_attn",
         "attn_output": "attn.c_proj", "ffn_norm": "ln_2",
         "ffn_up": "mlp.c_fc", "ffn_down": "mlp.c_proj"}
if arch == "bert":
    G = {"token_embd": "embeddings.word_embeddings",
         "token_types": "embeddings.token_type_embeddings",
         "position_embd": "embeddings.position_embeddings",
         "token_embd_norm": "embeddings.LayerNorm",
         "attn_q": "attention.self.query", "attn_k": "attention.self.key",
         "attn_v": "attention.self.value",
         "attn_output": "attention.output.dense",
         "attn_output_norm": "attention.output.LayerNorm",
         "ffn_up": "intermediate.dense", "ffn_down": "output.dense",
         "layer_output_norm": "output.LayerNorm"}
    if mt == "distilbert":
        G.update({"attn_q": "attention.q_lin", "attn_k": "attention.k_lin",
                  "attn_v": "attention.v_lin", "attn_output": "attention.out_lin",
                  "attn_output_norm": "sa_layer_norm", "ffn_up": "ffn.lin1",
                  "ffn_down": "ffn.lin2", "layer_output_norm": "output_layer_norm"})
layer_pre = {"gpt2": "h.%d.", "bert": "encoder.layer.%d.",
             "roberta": "encoder.layer.%d.",
             "distilbert": "transformer.layer.%d."}.get(mt, "model.layers.%d.")

def hf_names(g):
    m = re.fullmatch(r"(?:blk\.(\d+)\.)?(\w+)\.(weight|bias)", g)
    assert m, "odd GGUF name %s" % g
    blk, part, sfx = m.groups()
    if blk is None:
        base = G[part]
        if part == "output" or mt not in ("gpt2",) and base.startswith("model."):
            return [base + "." + sfx]
        return [pre + base + "." + sfx]
    lp = pre + layer_pre % int(blk)
    if part in EXP:
        n = cfg["num_local_experts"]
        return [lp + "block_sparse_moe.experts.%d.%s.%s" % (e, EXP[part], sfx)
                for e in range(n)]
    assert part in G, "no HF tensor for %s" % g
    return [lp + G[part] + "." + sfx]

def rne_bf16(v):
    u = struct.unpack("<I", struct.pack("<f", v))[0]
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF

used = set()
permute = mt in ("llama", "mistral", "mixtral")
kvh = cfg.get("num_key_value_heads", heads)
for g, (ne, t, off) in T.items():
    if len(ne) == 1 or g.endswith("_norm.weight"):
        assert t == F32, "%s: type %d, want f32" % (g, t)
    two_d_weight = len(ne) >= 2 and g.endswith(".weight") and not g.endswith("_norm.weight") \
        and g not in ("position_embd.weight", "token_types.weight") and "ffn_gate_inp" not in g
    if typ in ("f32", "f16", "bf16"):
        assert t == (base if two_d_weight else F32), "%s: type %d" % (g, t)
    elif two_d_weight:
        assert t in (base, 14, 8, 6, 7, 2, 12, F16), "%s: type %d for %s" % (g, t, typ)
    else:
        assert t == F32, "%s: type %d" % (g, t)
    if g == "rope_freqs.weight":
        rs = cfg["rope_scaling"]
        assert rs["rope_type"] == "llama3"
        assert ne == [cfg.get("head_dim", hidden // heads) // 2]
        vals = struct.unpack_from("<%df" % ne[0], buf, start + off)
        assert all(1 - 1e-6 <= v <= rs["factor"] * (1 + 1e-6) for v in vals), vals
        continue
    names = hf_names(g)
    x = []
    for n in names:
        assert n in st, "%s: no HF tensor '%s'" % (g, n)
        used.add(n)
        if t not in (F32, F16, BF16):
            # quantized blocks: llama-quantize's bytes are
            # export_llamacpp.sh's to check; here the shape only
            shape = list(st[n][1])
            if mt == "gpt2" and len(shape) == 2 and \
               re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", n):
                shape = shape[::-1]
            continue
        v, shape = floats(n)
        if mt == "gpt2" and len(shape) == 2 and n.endswith(".weight") and \
           re.search(r"\.(c_attn|c_proj|c_fc)\.weight$", n):
            a, b = shape
            v = [v[p * b + q] for q in range(b) for p in range(a)]
            shape = [b, a]
        if mt == "gemma" and n.endswith("norm.weight"):
            v = [struct.unpack("<f", struct.pack("<f", y + 1.0))[0] for y in v]
        if mt == "roberta" and n.endswith("position_embeddings.weight"):
            o = (cfg["pad_token_id"] + 1) * shape[1]
            v = v[o:]
            shape = [shape[0] - cfg["pad_token_id"] - 1, shape[1]]
        if permute and re.search(r"\.(q_proj|k_proj)\.(weight|bias)$", n):
            nh = heads if ".q_proj." in n else kvh
            rows = shape[0]
            cols = len(v) // rows
            hd = rows // nh
            w = []
            for h in range(nh):
                for i in range(hd // 2):
                    for r in (i, i + hd // 2):
                        s0 = (h * hd + r) * cols
                        w += v[s0:s0 + cols]
            v = w
        x += v
    # dims reversed: ne[0] is the HF tensor's last dimension
    want_ne = list(reversed(shape)) + ([len(names)] if len(names) > 1 else [])
    assert ne == want_ne, "%s: ne %s, want %s" % (g, ne, want_ne)
    if t == F32:
        want = struct.pack("<%df" % len(x), *x)
    elif t == F16:
        want = struct.pack("<%de" % len(x), *x)
    elif t == BF16:
        want = struct.pack("<%dH" % len(x), *[rne_bf16(y) for y in x])
    else:
        continue
    got = buf[start + off:start + off + len(want)]
    if got != want:
        i = next(i for i in range(len(want)) if got[i] != want[i])
        raise AssertionError("%s: data differs at byte %d" % (g, i))
dropped = {k for k in st if k not in used}
ok = re.compile(r"(lm_head\.weight|.*\.attn\.(masked_)?bias|.*position_ids|"
                r"(bert\.|roberta\.)?pooler\..*|cls\..*|lm_head\..*|vocab_.*|"
                r".*rotary_emb\.inv_freq)$")
bad = sorted(k for k in dropped if not ok.fullmatch(k))
assert not bad, "HF tensors not exported: %s" % bad
if "lm_head.weight" in dropped:
    assert mt == "gemma", "lm_head.weight dropped"
EOF

types="f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K tq1_0 tq2_0"

# 1. every fixture at every type
for dir in "$FX"/*/ "$MODELS/stories260k/"; do
	quick_skip "$dir" && continue
	m=$(basename "$dir")
	[ -f "$dir/config.json" ] || continue
	for t in $types; do
		out=$tmp/$m-$t.gguf
		expect "$m $t" 0 "$out" "$x" -m "$dir" --type "$t" -o "$out" ||
			continue
		cases=$((cases + 1))
		python3 "$tmp/check.py" "$out" "$dir" "$t" >"$tmp/why" 2>&1 ||
			fail "$m $t: $(tail -c 600 "$tmp/why")"
		[ "$t" = f32 ] || [ "$t" = f16 ] || [ "$t" = q4_K ] || rm -f "$out"
	done
done

# 2. -o - writes the same bytes; the default type is f16
cases=$((cases + 1))
"$x" -m "$MODELS/stories260k" -o - >"$tmp/pipe.gguf" 2>"$tmp/err" </dev/null ||
	fail "-o -: $(cat "$tmp/err")"
cmp -s "$tmp/pipe.gguf" "$tmp/stories260k-f16.gguf" ||
	fail "-o - (default f16) differs from the --type f16 file"
cases=$((cases + 1))
pm=gemma-tiny
quick_skip "$pm" && pm=llama-tiny
"$x" -m "$FX/$pm" --type q4_K -o - 2>"$tmp/err" </dev/null | cat >"$tmp/pipe.gguf"
cmp -s "$tmp/pipe.gguf" "$tmp/$pm-q4_K.gguf" ||
	fail "-o - through a pipe differs from the file"

# 3. bad input
expect "unknown type" 2 "unknown type 'q3_K'" \
	"$x" -m "$FX/llama-tiny" --type q3_K -o "$tmp/bad.gguf"
expect "unknown format" 2 "unknown format 'tflite'" \
	"$x" -m "$FX/llama-tiny" --format tflite -o "$tmp/bad.gguf"
expect "no -o" 2 "-o <path> is required" "$x" -m "$FX/llama-tiny"
expect "no -m" 2 "-m <model> is required" "$x" -o "$tmp/bad.gguf"
expect "--dtype without --from" 2 "--dtype is for --from" \
	"$x" -m "$FX/llama-tiny" --dtype f16 -o "$tmp/bad.gguf"
cp "$tmp/llama-tiny-f32.gguf" "$tmp/exists.gguf"
sum=$(cksum <"$tmp/exists.gguf")
expect "existing -o" 1 "'$tmp/exists.gguf' exists; --force replaces it" \
	"$x" -m "$FX/llama-tiny" --type f16 -o "$tmp/exists.gguf"
cases=$((cases + 1))
[ "$(cksum <"$tmp/exists.gguf")" = "$sum" ] || fail "existing -o was changed"
expect "--force" 0 "$tmp/exists.gguf" \
	"$x" -m "$FX/llama-tiny" --type f16 -o "$tmp/exists.gguf" --force
cases=$((cases + 1))
cmp -s "$tmp/exists.gguf" "$tmp/llama-tiny-f16.gguf" || fail "--force did not replace"
mkdir "$tmp/adir"
expect "-o a directory" 1 "'$tmp/adir' is a directory" \
	"$x" -m "$FX/llama-tiny" -o "$tmp/adir" --force
expect "missing model" 1 "model directory '$tmp/nope' does not exist" \
	"$x" -m "$tmp/nope" -o "$tmp/bad.gguf"

# an architecture with no table
mkdir "$tmp/falcon"
cp "$FX/llama-tiny/model.safetensors" "$tmp/falcon/"
python3 - "$FX/llama-tiny/config.json" "$tmp/falcon/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["model_type"] = "falcon"
json.dump(c, open(sys.argv[2], "w"))
EOF
expect "no table" 1 "architecture 'falcon' has no GGUF table" \
	"$x" -m "$tmp/falcon" -o "$tmp/bad.gguf"

# a tensor no rule names
mkdir "$tmp/extra"
cp "$FX/llama-tiny/config.json" "$tmp/extra/"
python3 - "$tmp/extra/model.safetensors" <<'EOF'
import json, struct, sys
h = {"model.embed_tokens.weight": {"dtype": "F32", "shape": [512, 64], "data_offsets": [0, 131072]},
     "model.mystery.weight": {"dtype": "F32", "shape": [4], "data_offsets": [131072, 131088]}}
b = json.dumps(h).encode()
b += b" " * (-len(b) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(b)) + b + bytes(131088))
EOF
expect "unnamed tensor" 1 "tensor 'model.mystery.weight' has no GGUF name in the llama table" \
	"$x" -m "$tmp/extra" -o "$tmp/bad.gguf"

# a truncated checkpoint
mkdir "$tmp/trunc"
cp "$FX/llama-tiny/config.json" "$tmp/trunc/"
head -c 20000 "$FX/llama-tiny/model.safetensors" >"$tmp/trunc/model.safetensors"
expect "truncated safetensors" 1 "model.safetensors" \
	"$x" -m "$tmp/trunc" -o "$tmp/bad.gguf"

# a quantized checkpoint
if "$BIN/hf-quantize" -m "$FX/llama-tiny" --method int8 -o "$tmp/int8" \
	>/dev/null 2>&1 </dev/null; then
	expect "quantized checkpoint to a ternary type" 1 \
		"a bitsandbytes int8 checkpoint cannot be exported as tq2_0" \
		"$x" -m "$tmp/int8" --type tq2_0 -o "$tmp/bad.gguf"
fi
cases=$((cases + 1))
[ -e "$tmp/bad.gguf" ] && fail "a failed export left '$tmp/bad.gguf'"

# 3b. tokenizers without tokenizer.model. A SentencePiece-style BPE
# tokenizer.json (llama2, llama2-nonlegacy: byte_fallback, a Sequence
# decoder) is embedded as llama.cpp's converter does it (LlamaHfVocab,
# _set_vocab_llama_hf), rebuilt here from the tokenizer files: the base
# vocabulary in id order, every score -1000, <0xXX> BYTE, the special
# tokens' ids CONTROL, the rest NORMAL; model "llama", pre "default".
# WordLevel and Unigram tokenizer.json are refused in one line.
cat >"$tmp/tokmodel.py" <<'EOF'
import json, os, shutil, struct, sys
src, out = sys.argv[1], sys.argv[2]
tok = json.load(open(os.path.join(src, "tokenizer.json")))
v = tok["model"]["vocab"]
ids = list(v.values()) if isinstance(v, dict) else list(range(len(v)))
ids += [a["id"] for a in tok.get("added_tokens", [])]
V, H = max(ids) + 1, 16
os.makedirs(out)
for f in ("tokenizer.json", "tokenizer_config.json"):
    if os.path.exists(os.path.join(src, f)):
        shutil.copy(os.path.join(src, f), out)
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
           "intermediate_size": 32, "vocab_size": V, "max_position_embeddings": 64,
           "rms_norm_eps": 1e-5, "tie_word_embeddings": True}, open(os.path.join(out, "config.json"), "w"))
t = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
hdr, off = {}, 0
for n, shape in t.items():
    k = 2 * shape[0] * (shape[1] if len(shape) > 1 else 1)
    hdr[n] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + k]}
    off += k
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(os.path.join(out, "model.safetensors"), "wb").write(struct.pack("<Q", len(h)) + h + bytes(off))
EOF
cat >"$tmp/tokcheck.py" <<'EOF'
import json, os, re, struct, sys
path, mdir = sys.argv[1:3]
buf = open(path, "rb").read()
pos = 24
def take(fmt):
    global pos
    v = struct.unpack_from("<" + fmt, buf, pos)
    pos += struct.calcsize("<" + fmt)
    return v[0]
def string():
    global pos
    n = take("Q")
    pos += n
    return buf[pos - n:pos].decode("utf-8")
S = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
def value(t):
    if t == 8:
        return string()
    if t == 9:
        e, n = take("I"), take("Q")
        return [value(e) for _ in range(n)]
    return take(S[t])
nkv = struct.unpack_from("<Q", buf, 16)[0]
kv = {}
for _ in range(nkv):
    k = string()
    kv[k] = value(take("I"))
tj = json.load(open(os.path.join(mdir, "tokenizer.json")))
tc = {}
if os.path.exists(os.path.join(mdir, "tokenizer_config.json")):
    tc = json.load(open(os.path.join(mdir, "tokenizer_config.json")))
vocab = tj["model"]["vocab"]
rev = {i: t for t, i in vocab.items()}
base = len(vocab)
added = sorted((a["id"], a["content"]) for a in tj["added_tokens"] if a["id"] >= base)
def content(e):
    return e.get("content") if isinstance(e, dict) else e
if tc:
    names = [content(tc.get(k)) for k in ("bos_token", "eos_token", "unk_token", "sep_token",
                                          "pad_token", "cls_token", "mask_token")]
    names += [content(e) for e in tc.get("additional_special_tokens", [])]
else:
    names = ["<s>", "</s>", "<unk>"]
allv = dict(vocab)
allv.update({c: i for i, c in added})
special = {allv[n] for n in names if n in allv}
tokens = [rev[i] for i in range(base)] + [c for _, c in added]
types = [6 if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", rev[i]) else 3 if i in special else 1
         for i in range(base)] + [3 if i in special else 4 for i, _ in added]
assert kv["tokenizer.ggml.model"] == "llama", kv["tokenizer.ggml.model"]
assert kv["tokenizer.ggml.pre"] == "default", kv["tokenizer.ggml.pre"]
assert kv["tokenizer.ggml.tokens"] == tokens, "tokens differ"
assert kv["tokenizer.ggml.scores"] == [-1000.0] * len(tokens), "scores"
got = kv["tokenizer.ggml.token_type"]
bad = [i for i in range(len(types)) if got[i] != types[i]]
assert len(got) == len(types) and not bad, "token types differ first at id %d" % (bad or [len(got)])[0]
if tc:
    assert kv["tokenizer.ggml.bos_token_id"] == allv["<s>"]
    assert kv["tokenizer.ggml.eos_token_id"] == allv["</s>"]
    assert kv["tokenizer.ggml.unknown_token_id"] == allv["<unk>"]
if "add_bos_token" in tc:
    assert kv["tokenizer.ggml.add_bos_token"] == tc["add_bos_token"]
print("%d tokens, %d byte, %d control" % (len(tokens), types.count(6), types.count(3)))
EOF
TK=$(dirname "$FX")/tokenizers
for tk in llama2 llama2-nonlegacy; do
	m=$tmp/tok-$tk
	cases=$((cases + 1))
	python3 "$tmp/tokmodel.py" "$TK/$tk" "$m" 2>"$tmp/err" ||
		{ fail "$tk: making its model: $(head -c 400 "$tmp/err")"; continue; }
	expect "$tk tokenizer.json only" 0 "" "$x" -m "$m" --type f32 -o "$m.gguf" ||
		continue
	cases=$((cases + 1))
	python3 "$tmp/tokcheck.py" "$m.gguf" "$m" >"$tmp/why" 2>&1 ||
		fail "$tk: vocabulary: $(tail -c 600 "$tmp/why")"
	rm -rf "$m" "$m.gguf"
done
python3 "$tmp/tokmodel.py" "$TK/wordlevel" "$tmp/tok-wl" &&
	expect "WordLevel refused" 1 "a WordLevel tokenizer, which no GGUF tokenizer model" \
		"$x" -m "$tmp/tok-wl" -o "$tmp/bad.gguf"
python3 "$tmp/tokmodel.py" "$TK/pegasus" "$tmp/tok-ug" &&
	expect "Unigram without tokenizer.model refused" 1 \
		"a Unigram tokenizer.json without tokenizer.model" \
		"$x" -m "$tmp/tok-ug" -o "$tmp/bad.gguf"
cases=$((cases + 1))
[ -e "$tmp/bad.gguf" ] && fail "a refused tokenizer left '$tmp/bad.gguf'"
rm -rf "$tmp/tok-wl" "$tmp/tok-ug"

# 4. an interrupted export leaves nothing: a model big enough to take a
# while at q4_K, stopped by SIGINT
mkdir "$tmp/big" "$tmp/int"
python3 - "$tmp/big" <<'EOF'
import json, os, struct, sys
d = sys.argv[1]
H, F, L, V = 512, 1536, 8, 32000
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
       "hidden_size": H, "intermediate_size": F, "num_hidden_layers": L,
       "num_attention_heads": 4, "num_key_value_heads": 4,
       "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
       "vocab_size": V, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
shapes = {"model.embed_tokens.weight": [V, H], "lm_head.weight": [V, H],
          "model.norm.weight": [H]}
for i in range(L):
    p = "model.layers.%d." % i
    for n in ("q", "k", "v", "o"):
        shapes[p + "self_attn.%s_proj.weight" % n] = [H, H]
    shapes[p + "mlp.gate_proj.weight"] = [F, H]
    shapes[p + "mlp.up_proj.weight"] = [F, H]
    shapes[p + "mlp.down_proj.weight"] = [H, F]
    shapes[p + "input_layernorm.weight"] = [H]
    shapes[p + "post_attention_layernorm.weight"] = [H]
h, off = {}, 0
for k, s in shapes.items():
    n = 2
    for x in s:
        n *= x
    h[k] = {"dtype": "BF16", "shape": s, "data_offsets": [off, off + n]}
    off += n
b = json.dumps(h).encode()
b += b" " * (-len(b) % 8)
with open(os.path.join(d, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(b)) + b)
    # small random-looking bf16 values
    pat = bytes((i * 37 + 11) % 251 if i % 2 == 0 else 0x3c for i in range(4096))
    f.write(pat * (off // 4096) + pat[:off % 4096])
EOF
cases=$((cases + 1))
# job control on: without it bash starts background jobs with SIGINT
# ignored
set -m
"$x" -m "$tmp/big" --type q4_K -o "$tmp/int/big.gguf" </dev/null >/dev/null 2>"$tmp/err" &
pid=$!
set +m
# stop it once it writes (its temporary file is there)
for _ in $(seq 1000); do
	ls "$tmp/int"/big.gguf.tmp.* >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.01
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
if [ "$rc" = 0 ]; then
	echo "# the export finished before the interrupt; nothing to check" >&2
elif [ "$rc" != 130 ]; then
	fail "interrupted export: exit $rc, want 130: $(cat "$tmp/err")"
fi
left=$(ls -A "$tmp/int")
if [ "$rc" != 0 ] && [ -n "$left" ]; then
	fail "an interrupted export left: $left"
fi
rm -rf "$tmp/big" "$tmp/int"

# 5. --help, and the hf export spelling
expect "--help" 0 "usage: hf-export -m <model>" "$x" --help
expect "hf export" 2 "unknown type 'x'" "$BIN/hf" export -m "$FX/llama-tiny" \
	--type x -o "$tmp/bad.gguf"

echo "export: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
