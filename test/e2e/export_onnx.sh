#!/bin/bash
# e2e: onnxruntime and Transformers.js themselves prove the ONNX exports of
# `hf-export --format onnx`. For every model fixture, in every variant
# (model.onnx f32, model_fp16, model_quantized int8, model_q4 MatMulNBits):
#   - onnxruntime-node (test/runtimes/ort.mjs) loads the file. Decoders:
#     the logits of each prompt in one call with an empty past, the same
#     prompt fed as a prefill then token by token through present ->
#     past_key_values, and prompts as a left-padded batch of 2, all match
#     `hf-run --task logits`. Encoders: last_hidden_state mean-pooled per
#     prompt (alone and in a right-padded batch) matches `hf-run --task
#     embed`, masked_lm's logits match `hf-run --task logits`, and
#     with a classification head added, sequence_classification's
#     softmax matches `hf-run --task classify`.
#     f32 within the fixtures' float32 bar (1e-4, test/fixtures/models/
#     README.md) with the argmax equal everywhere; the other variants
#     within the bounds below, relative to the largest |value| of the row
#     set (measured on these fixtures, with their margins).
#   - Transformers.js (test/runtimes/tjs.mjs) runs pipeline("text-
#     generation") greedily on the exported models/stories260k and gives
#     hf-run's greedy text, and pipeline("feature-extraction") on the
#     exported bert-tiny (with a WordPiece tokenizer.json made here for
#     its vocabulary) gives hf-run's --task embed embeddings.
#   - external data (HF_ONNX_EXTERNAL=1) loads and gives the same logits;
#     bad input gets one line and exit 1.
# Needs the runtimes of scripts/bootstrap-runtimes (test/runtimes): without
# them it exits 77, which meson reports as skipped. The checks are python3
# over the programs' outputs; nothing is compared with our own earlier
# output.
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
RT=${HF_RUNTIMES:-$ROOT/test/runtimes}
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
if [ ! -d "$RT/node_modules/onnxruntime-node" ] ||
   [ ! -d "$RT/node_modules/@huggingface/transformers" ]; then
	echo "export_onnx: skipped: $RT/node_modules has no onnxruntime-node or" \
		"@huggingface/transformers (run scripts/bootstrap-runtimes)" >&2
	exit 77
fi
if ! command -v node >/dev/null; then
	echo "export_onnx: skipped: no node on PATH (run scripts/bootstrap)" >&2
	exit 77
fi
ex=$BIN/hf-export
run=$BIN/hf-run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# check NAME ARGS... < PYTHON: a python3 check; it prints why on failure.
check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$@" >"$tmp/why" 2>&1 ||
		fail "$name: $(head -c 800 "$tmp/why")"
	[ -z "${VERBOSE:-}" ] || cat "$tmp/why" >&2
}

# expect NAME RC FRAGMENT CMD...: exit status RC and, for failures, one
# line on stderr holding FRAGMENT.
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
	if [ "$want" != 0 ]; then
		if ! grep -qF -- "$frag" "$tmp/err"; then
			fail "$name: '$frag' not in stderr: $(head -c 400 "$tmp/err")"
			return 1
		fi
		if [ "$want" = 1 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
			fail "$name: want one line on stderr, got: $(cat "$tmp/err")"
			return 1
		fi
	fi
	return 0
}

# Bounds per variant, on max |ours - hf-run| / max |hf-run| over a row
# set: f32 is the fixtures' float32 bar; fp16 rounds every weight to 11
# significant bits (measured <= 1.5e-3, gemma); quantized is int8 weights with
# one scale per output column and 8-bit dynamic activations (<= 0.09);
# q4 is 4-bit blocks of 32 on random weights of 32 to 64 inputs, where a
# logit moves by up to 0.74 of the largest (mixtral: routing changes), so
# its bound only says the file is this model's, and section 3 proves
# its blocks exactly.
declare -A bound=([model]=1e-4 [model_fp16]=5e-3 [model_quantized]=0.15
		  [model_q4]=1.0)
variants="model model_fp16 model_quantized model_q4"

# request FIXTURE_DIR: ort.mjs's input: the prompts of reference.json, the
# batch's prompts and pad id.
request() {
	python3 - "$1/reference.json" <<-'EOF'
	import json, sys
	r = json.load(open(sys.argv[1]))
	ps = r["prompts"]
	print(json.dumps({
	    "prompts": [p["input_ids"] for p in ps],
	    "types": [p.get("token_type_ids", [0] * len(p["input_ids"]))
	              for p in ps],
	    "batch": r["batch"].get("prompts", [0, 1]),
	    "pad": r["batch"]["pad_token_id"]}))
	EOF
}

# hf-run's records for the prompts of a request, one line each.
records() {
	python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
for ids, t in zip(r["prompts"], r["types"]):
    print(json.dumps({"ids": ids, "token_type_ids": t}))' "$1"
}

cmp_decoder='
import json, sys
ort = json.load(open(sys.argv[1]))
hf = [json.loads(l)["logits"] for l in open(sys.argv[2])]
req = json.load(open(sys.argv[3]))
tol, exact = float(sys.argv[4]), sys.argv[5] == "1"
worst = 0.0
def cmp(what, got, want):
    global worst
    assert len(got) == len(want), f"{what}: {len(got)} rows, want {len(want)}"
    big = max(abs(x) for r in want for x in r)
    for t, (g, w) in enumerate(zip(got, want)):
        assert len(g) == len(w), f"{what}: row {t} has {len(g)} logits"
        d = max(abs(a - b) for a, b in zip(g, w)) / big
        worst = max(worst, d)
        assert d <= tol, f"{what} position {t}: {d:.3g} of the largest logit, bound {tol}"
        if exact:
            ag, aw = g.index(max(g)), w.index(max(w))
            assert ag == aw, f"{what} position {t}: argmax {ag}, hf-run {aw}"
for i, w in enumerate(hf):
    cmp(f"prompt {i} one call", ort["full"][i], w)
    cmp(f"prompt {i} through the cache", ort["cached"][i], w)
for k, i in enumerate(req["batch"]):
    cmp(f"prompt {i} in the padded batch", ort["batch"][k], hf[i])
print(f"worst {worst:.3g}")
'

cmp_encoder='
import json, sys
ort = json.load(open(sys.argv[1]))
hf = [json.loads(l)[sys.argv[4]] for l in open(sys.argv[2])]
req = json.load(open(sys.argv[3]))
tol, what = float(sys.argv[5]), sys.argv[4]
worst = 0.0
def cmp(name, got, want):
    global worst
    flat = lambda x: [v for r in x for v in r] if isinstance(x[0], list) else x
    got, want = flat(got), flat(want)
    assert len(got) == len(want), f"{name}: {len(got)} values, want {len(want)}"
    big = max(abs(x) for x in want)
    for i, (a, b) in enumerate(zip(got, want)):
        d = abs(a - b) / big
        worst = max(worst, d)
        assert d <= tol, f"{name} [{i}]: {a} vs hf-run {b}, {d:.3g} of the largest, bound {tol}"
if what == "embedding":
    for i, w in enumerate(hf):
        h = ort["out"]["last_hidden_state"][i]
        mean = [sum(r[k] for r in h) / len(h) for k in range(len(h[0]))]
        cmp(f"prompt {i} mean of last_hidden_state", mean, w)
    for k, i in enumerate(req["batch"]):
        cmp(f"prompt {i} mean in the padded batch", ort["mean"][k], hf[i])
else:
    for i, w in enumerate(hf):
        cmp(f"prompt {i} logits", ort["out"]["logits"][i], w)
    for k, i in enumerate(req["batch"]):
        cmp(f"prompt {i} logits in the padded batch", ort["batch"]["logits"][k], hf[i])
print(f"worst {worst:.3g}")
'

# 1. every model fixture, every variant, in onnxruntime
for fx in gpt2-tiny llama-tiny llama-tiny-untied mistral-tiny qwen2-tiny \
	  qwen3-tiny gemma-tiny phi3-tiny mixtral-tiny bert-tiny roberta-tiny \
	  distilbert-tiny; do
	quick_skip "$fx" && continue
	out=$tmp/$fx
	expect "$fx: export" 0 "" "$ex" -m "$FX/$fx" --format onnx -o "$out" ||
		continue
	check "$fx: a complete repository" "$out" "$FX/$fx" <<-'EOF'
	import os, sys
	out, src = sys.argv[1:3]
	for f in ("config.json", "generation_config.json"):
	    if os.path.exists(os.path.join(src, f)):
	        assert open(os.path.join(out, f), "rb").read() == \
	            open(os.path.join(src, f), "rb").read(), f"{f} differs"
	for v in ("model", "model_fp16", "model_quantized", "model_q4"):
	    p = os.path.join(out, "onnx", v + ".onnx")
	    assert os.path.getsize(p) > 1000, f"{p} missing or empty"
	assert not [f for f in os.listdir(os.path.join(out, "onnx")) if ".tmp." in f]
	EOF
	request "$FX/$fx" >"$tmp/req.json"
	records "$tmp/req.json" >"$tmp/rec.jsonl"
	case $fx in
	bert-tiny|roberta-tiny|distilbert-tiny)
		"$run" -m "$FX/$fx" --jsonl --task embed <"$tmp/rec.jsonl" \
			>"$tmp/hf_embed.jsonl" || fail "$fx: hf-run --task embed"
		"$run" -m "$FX/$fx" --jsonl --task logits <"$tmp/rec.jsonl" \
			>"$tmp/hf_logits.jsonl" || fail "$fx: hf-run --task logits"
		for v in $variants; do
			node "$RT/ort.mjs" encoder "$out/onnx/$v.onnx" <"$tmp/req.json" \
				>"$tmp/ort.json" 2>"$tmp/ort.err" ||
				{ fail "$fx $v: ort.mjs: $(tail -3 "$tmp/ort.err")"; continue; }
			check "$fx $v: embeddings" "$tmp/ort.json" "$tmp/hf_embed.jsonl" \
				"$tmp/req.json" embedding "${bound[$v]}" <<<"$cmp_encoder"
			m=${v/model/masked_lm}
			node "$RT/ort.mjs" encoder "$out/onnx/$m.onnx" <"$tmp/req.json" \
				>"$tmp/ort.json" 2>"$tmp/ort.err" ||
				{ fail "$fx $m: ort.mjs: $(tail -3 "$tmp/ort.err")"; continue; }
			check "$fx $m: masked-LM logits" "$tmp/ort.json" \
				"$tmp/hf_logits.jsonl" "$tmp/req.json" logits "${bound[$v]}" \
				<<<"$cmp_encoder"
		done
		;;
	*)
		"$run" -m "$FX/$fx" --jsonl --task logits <"$tmp/rec.jsonl" \
			>"$tmp/hf_logits.jsonl" || fail "$fx: hf-run --task logits"
		for v in $variants; do
			node "$RT/ort.mjs" decoder "$out/onnx/$v.onnx" <"$tmp/req.json" \
				>"$tmp/ort.json" 2>"$tmp/ort.err" ||
				{ fail "$fx $v: ort.mjs: $(tail -3 "$tmp/ort.err")"; continue; }
			check "$fx $v: logits" "$tmp/ort.json" "$tmp/hf_logits.jsonl" \
				"$tmp/req.json" "${bound[$v]}" "$([ $v = model ] && echo 1)" \
				<<<"$cmp_decoder"
		done
		;;
	esac
done

# 2b. sequence classification: each encoder fixture with the head of its
# *ForSequenceClassification class added (random weights, seed 7; BERT:
# classifier on the pooler; RoBERTa: classifier.dense + out_proj on the
# first token; DistilBERT: pre_classifier + ReLU + classifier):
# softmax of sequence_classification.onnx's logits is hf-run --task
# classify's scores
for fx in bert-tiny roberta-tiny distilbert-tiny; do
	quick_skip "$fx" && continue
	src=$tmp/cls-$fx
	cp -r "$FX/$fx" "$src"
	python3 - "$src" "$fx" <<'PY'
import json, os, random, struct, sys
d, fx = sys.argv[1:3]
cfg = json.load(open(os.path.join(d, "config.json")))
H = cfg.get("hidden_size") or cfg["dim"]
heads = {"bert-tiny": [("classifier", 3, H)],
         "roberta-tiny": [("classifier.dense", H, H),
                          ("classifier.out_proj", 3, H)],
         "distilbert-tiny": [("pre_classifier", H, H),
                             ("classifier", 3, H)]}[fx]
cfg["architectures"] = [cfg["architectures"][0].replace(
    "ForMaskedLM", "ForSequenceClassification")]
cfg["id2label"] = {"0": "A", "1": "B", "2": "C"}
cfg["label2id"] = {"A": 0, "B": 1, "C": 2}
json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
p = os.path.join(d, "model.safetensors")
b = open(p, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
data = b[8 + n:]
rng = random.Random(7)
for name, o, i in heads:
    for suffix, shape in ((".weight", [o, i]), (".bias", [o])):
        k = o * (i if suffix == ".weight" else 1)
        x = struct.pack(f"<{k}f", *[rng.gauss(0, 0.3) for _ in range(k)])
        head[name + suffix] = {"dtype": "F32", "shape": shape,
                               "data_offsets": [len(data), len(data) + len(x)]}
        data += x
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(p, "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
	expect "$fx classifier: export" 0 "" "$ex" -m "$src" --format onnx \
		-o "$src-onnx" || continue
	request "$FX/$fx" >"$tmp/req.json"
	records "$tmp/req.json" >"$tmp/rec.jsonl"
	"$run" -m "$src" --jsonl --task classify <"$tmp/rec.jsonl" \
		>"$tmp/hf_cls.jsonl" || { fail "$fx classifier: hf-run"; continue; }
	for v in "" _fp16 _quantized _q4; do
		b=${bound[model$v]}
		node "$RT/ort.mjs" encoder \
			"$src-onnx/onnx/sequence_classification$v.onnx" \
			<"$tmp/req.json" >"$tmp/ort.json" 2>"$tmp/ort.err" ||
			{ fail "$fx classifier$v: ort.mjs: $(tail -3 "$tmp/ort.err")"; continue; }
		check "$fx sequence_classification$v: scores" "$tmp/ort.json" \
			"$tmp/hf_cls.jsonl" "$b" <<'PY'
import json, math, sys
ort = json.load(open(sys.argv[1]))
hf = [json.loads(l) for l in open(sys.argv[2])]
tol = float(sys.argv[3])
def softmax(z):
    m = max(z)
    e = [math.exp(x - m) for x in z]
    return [x / sum(e) for x in e]
rows = [(f"prompt {i}", r) for i, r in enumerate(ort["out"]["logits"])]
assert len(rows) == len(hf), (len(rows), len(hf))
for (name, z), h in zip(rows, hf):
    want = {s["id"]: s["score"] for s in h["scores"]}
    assert len(want) == len(z) == 3, (want, z)
    for k, p in enumerate(softmax(z)):
        assert abs(p - want[k]) <= tol, f"{name} label {k}: {p} vs hf-run {want[k]}"
print("ok")
PY
	done
done

# 2. external data: every weight in model.onnx_data, same logits
fx=llama-tiny
request "$FX/$fx" >"$tmp/req.json"
records "$tmp/req.json" >"$tmp/rec.jsonl"
"$run" -m "$FX/$fx" --jsonl --task logits <"$tmp/rec.jsonl" >"$tmp/hf_logits.jsonl"
if expect "external data: export" 0 "" env HF_ONNX_EXTERNAL=1 "$ex" \
	-m "$FX/$fx" --format onnx -o "$tmp/ext"; then
	check "external data: a side file per variant" "$tmp/ext/onnx" <<-'EOF'
	import os, sys
	d = sys.argv[1]
	for v in ("model", "model_fp16", "model_quantized", "model_q4"):
	    m = os.path.getsize(os.path.join(d, v + ".onnx"))
	    x = os.path.getsize(os.path.join(d, v + ".onnx_data"))
	    assert x > 4 * m, f"{v}: {m} bytes of graph, {x} of data"
	EOF
	for v in $variants; do
		node "$RT/ort.mjs" decoder "$tmp/ext/onnx/$v.onnx" <"$tmp/req.json" \
			>"$tmp/ort.json" 2>"$tmp/ort.err" ||
			{ fail "external $v: ort.mjs: $(tail -3 "$tmp/ort.err")"; continue; }
		check "external $v: logits" "$tmp/ort.json" "$tmp/hf_logits.jsonl" \
			"$tmp/req.json" "${bound[$v]}" "$([ $v = model ] && echo 1)" \
			<<<"$cmp_decoder"
	done
fi

# 3. q4's blocks are what MatMulNBits reads: the q4 file of
# llama-tiny-untied (every linear and the head in 4 bits, the embeddings
# in f32) computes what the f32 file of the same model does with each
# linear replaced, here in python, by the dequantized blocks of 32 the
# exporter is meant to write (symmetric: the value of largest magnitude
# to -8, zero point 8, round half to even in float32), within the f32 bar
fx=llama-tiny-untied
mkdir -p "$tmp/dq"
cp "$FX/$fx/config.json" "$FX/$fx/generation_config.json" "$tmp/dq/"
python3 - "$FX/$fx/model.safetensors" "$tmp/dq/model.safetensors" <<'PY'
import json, struct, sys
src, dst = sys.argv[1:3]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
head = json.loads(b[8:8 + n])
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
def values(v):
    raw = b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]
    if v["dtype"] == "F32":
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    if v["dtype"] == "F16":
        return list(struct.unpack(f"<{len(raw) // 2}e", raw))
    assert v["dtype"] == "BF16", v["dtype"]
    u = struct.unpack(f"<{len(raw) // 2}H", raw)
    return [struct.unpack("<f", struct.pack("<I", x << 16))[0] for x in u]
def q4(w, rows, cols):
    out = []
    for r in range(rows):
        for k in range(0, cols, 32):
            blk = w[r * cols + k:r * cols + min(k + 32, cols)]
            mx = max(blk, key=abs)
            sc = f32(mx / -8.0)
            inv = f32(1.0 / sc) if sc else 0.0
            for x in blk:
                q = min(15, max(0, round(f32(x * inv)) + 8))
                out.append(f32((q - 8) * sc))
    return out
tensors, meta = {}, {}
for name, v in head.items():
    if name == "__metadata__":
        continue
    x = values(v)
    if len(v["shape"]) == 2 and "embed_tokens" not in name:
        x = q4(x, *v["shape"])
    tensors[name] = (v["shape"], struct.pack(f"<{len(x)}f", *x))
off, body = 0, b""
for name in sorted(tensors):
    shape, data = tensors[name]
    meta[name] = {"dtype": "F32", "shape": shape,
                  "data_offsets": [off, off + len(data)]}
    off += len(data)
    body += data
h = json.dumps(meta).encode()
h += b" " * (-len(h) % 8)
open(dst, "wb").write(struct.pack("<Q", len(h)) + h + body)
PY
request "$FX/$fx" >"$tmp/req.json"
if expect "q4 proof: export" 0 "" "$ex" -m "$FX/$fx" --format onnx \
	-o "$tmp/q4a" && expect "q4 proof: export dequantized" 0 "" "$ex" \
	-m "$tmp/dq" --format onnx -o "$tmp/q4b" &&
   node "$RT/ort.mjs" decoder "$tmp/q4a/onnx/model_q4.onnx" <"$tmp/req.json" \
	>"$tmp/ort_a.json" &&
   node "$RT/ort.mjs" decoder "$tmp/q4b/onnx/model.onnx" <"$tmp/req.json" \
	>"$tmp/ort_b.json"; then
	check "q4 proof: MatMulNBits = f32 of the dequantized blocks" \
		"$tmp/ort_a.json" "$tmp/ort_b.json" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for k in ("full", "cached", "batch"):
    for i, (x, y) in enumerate(zip(a[k], b[k])):
        big = max(abs(v) for r in y for v in r)
        d = max(abs(p - q) for r, s in zip(x, y) for p, q in zip(r, s))
        assert d <= 1e-4 * big, f"{k} prompt {i}: {d} (largest {big})"
print("ok")
PY
else
	fail "q4 proof: export or ort.mjs failed"
fi

# 4. Transformers.js: greedy text-generation on stories260k
printf 'Once upon a time\nThe little dog\nLily wanted to\n' >"$tmp/prompts.txt"
if expect "stories260k: export" 0 "" "$ex" -m "$MODELS/stories260k" \
	--format onnx -o "$tmp/stories260k"; then
	"$run" -m "$MODELS/stories260k" -n 16 --temperature 0 <"$tmp/prompts.txt" \
		>"$tmp/hf_gen.jsonl" || fail "stories260k: hf-run"
	for dt in fp32 fp16; do
		node "$RT/tjs.mjs" generate "$tmp/stories260k" $dt 16 \
			<"$tmp/prompts.txt" >"$tmp/tjs.jsonl" 2>"$tmp/tjs.err" ||
			{ fail "stories260k $dt: tjs.mjs: $(tail -3 "$tmp/tjs.err")"; continue; }
		check "stories260k $dt: Transformers.js greedy text" "$tmp/tjs.jsonl" \
			"$tmp/hf_gen.jsonl" <<-'EOF'
		import json, sys
		tjs = [json.loads(l) for l in open(sys.argv[1])]
		hf = [json.loads(l) for l in open(sys.argv[2])]
		assert len(tjs) == len(hf) == 3, (len(tjs), len(hf))
		for t, h in zip(tjs, hf):
		    got = t["generated_text"]
		    assert got.startswith(t["prompt"]), got
		    got = got[len(t["prompt"]):]
		    assert got.strip() == h["text"].strip(), \
		        f"{t['prompt']!r}: Transformers.js {got!r}, hf-run {h['text']!r}"
		print("ok")
		EOF
	done
fi

# 5. Transformers.js: feature-extraction on bert-tiny, with a WordPiece
# tokenizer for its 512 ids ([PAD] [UNK] [CLS] [SEP] [MASK], then w5 ...)
cp -r "$FX/bert-tiny" "$tmp/bert-src"
python3 - "$tmp/bert-src" <<-'EOF'
import json, os, sys
d = sys.argv[1]
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
vocab = {t: i for i, t in enumerate(special)}
vocab.update({f"w{i}": i for i in range(5, 512)})
cls = {"SpecialToken": {"id": "[CLS]", "type_id": 0}}
sep = lambda t: {"SpecialToken": {"id": "[SEP]", "type_id": t}}
seq = lambda s, t: {"Sequence": {"id": s, "type_id": t}}
tok = {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [{"id": i, "content": t, "single_word": False,
                      "lstrip": False, "rstrip": False, "normalized": False,
                      "special": True} for i, t in enumerate(special)],
    "normalizer": {"type": "BertNormalizer", "clean_text": True,
                   "handle_chinese_chars": True, "strip_accents": None,
                   "lowercase": True},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {
        "type": "TemplateProcessing",
        "single": [cls, seq("A", 0), sep(0)],
        "pair": [cls, seq("A", 0), sep(0), seq("B", 1), sep(1)],
        "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]}
                           for t in ("[CLS]", "[SEP]")}},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]",
              "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100, "vocab": vocab}}
json.dump(tok, open(os.path.join(d, "tokenizer.json"), "w"))
json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True,
           "cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]",
           "unk_token": "[UNK]", "mask_token": "[MASK]",
           "model_max_length": 128},
          open(os.path.join(d, "tokenizer_config.json"), "w"))
EOF
printf 'w17 w301 w5 w42\nw9 w9 w100 w511 w6 w7 w8\nw250\n' >"$tmp/texts.txt"
if expect "bert-tiny+tokenizer: export" 0 "" "$ex" -m "$tmp/bert-src" \
	--format onnx -o "$tmp/bert-onnx"; then
	"$run" -m "$tmp/bert-src" --task embed <"$tmp/texts.txt" \
		>"$tmp/hf_emb.jsonl" || fail "bert-tiny: hf-run --task embed"
	for dt in fp32 fp16 q8 q4; do
		case $dt in
		fp32) b=${bound[model]} ;; fp16) b=${bound[model_fp16]} ;;
		q8) b=${bound[model_quantized]} ;; q4) b=${bound[model_q4]} ;;
		esac
		node "$RT/tjs.mjs" embed "$tmp/bert-onnx" $dt <"$tmp/texts.txt" \
			>"$tmp/tjs.jsonl" 2>"$tmp/tjs.err" ||
			{ fail "bert-tiny $dt: tjs.mjs: $(tail -3 "$tmp/tjs.err")"; continue; }
		check "bert-tiny $dt: Transformers.js feature-extraction" \
			"$tmp/tjs.jsonl" "$tmp/hf_emb.jsonl" "$b" <<-'EOF'
		import json, sys
		tjs = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
		hf = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
		tol = float(sys.argv[3])
		assert len(tjs) == len(hf) == 3, (len(tjs), len(hf))
		worst = 0.0
		for i, (a, b) in enumerate(zip(tjs, hf)):
		    assert len(a) == len(b), f"text {i}: {len(a)} dims, want {len(b)}"
		    big = max(abs(x) for x in b)
		    d = max(abs(x - y) for x, y in zip(a, b)) / big
		    worst = max(worst, d)
		    assert d <= tol, f"text {i}: {d:.3g} of the largest, bound {tol}"
		print(f"worst {worst:.3g}")
		EOF
	done
fi

# 6. bad input: one line, exit 1, nothing that looks complete
expect "existing output without --force" 1 "--force" "$ex" -m "$FX/llama-tiny" \
	--format onnx -o "$tmp/llama-tiny"
expect "existing output with --force" 0 "" "$ex" -m "$FX/llama-tiny" \
	--format onnx -o "$tmp/llama-tiny" --force
expect "missing model" 1 "nope" "$ex" -m "$tmp/nope" --format onnx -o "$tmp/o1"
cp -r "$FX/llama-tiny" "$tmp/dyn"
python3 - "$tmp/dyn/config.json" <<-'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["rope_scaling"] = {"rope_type": "dynamic", "factor": 2.0}
json.dump(c, open(sys.argv[1], "w"))
EOF
expect "dynamic rope refused" 1 "rope_scaling 'dynamic'" "$ex" -m "$tmp/dyn" \
	--format onnx -o "$tmp/o2"
cp -r "$FX/llama-tiny" "$tmp/unk"
sed -i 's/"model_type": *"llama"/"model_type": "t5"/' "$tmp/unk/config.json"
expect "unknown architecture refused" 1 "t5" "$ex" -m "$tmp/unk" --format onnx \
	-o "$tmp/o3"
cases=$((cases + 1))
[ ! -e "$tmp/o2/onnx/model.onnx" ] && [ ! -e "$tmp/o3/onnx/model.onnx" ] ||
	fail "a refused export left a model.onnx"

echo "export_onnx: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
