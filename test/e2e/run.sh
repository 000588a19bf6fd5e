#!/bin/bash
# e2e: hf-run through pipes on the fixture models: {"ids"} records, greedy
# continuations, batches, --task logits (JSON and safetensors), --task
# embed, perplexity, and bad input (each a clear one-line error and a
# non-zero exit). Outputs are checked against the fixtures' reference
# files with python3, never against our own earlier output.
set -u
BIN=${HF_BIN:-build/tools}
FX=${HF_FIXTURES:-test/fixtures}/models
MODELS=${HF_MODELS:-models}
run=$(cd "$BIN" && pwd)/hf-run
FX=$(cd "$FX" && pwd)
MODELS=$(cd "$MODELS" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# expect NAME RC FRAGMENT CMD...: exit status RC, and FRAGMENT (if not
# empty) in stdout for successes or in the one line of stderr for errors.
# stdin comes from $tmp/in.
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
	return 0
}

# check NAME PYTHON: run a python3 check on $tmp/out; it prints why on
# failure and exits non-zero.
check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$tmp/out" "$@" >"$tmp/why" 2>&1 ||
		fail "$name: $(head -c 600 "$tmp/why")"
}

pyhelpers='
import json, struct, sys, array, math
def st_read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for k, v in h.items():
            if k == "__metadata__" or v["dtype"] != "F32":
                continue
            f.seek(base + v["data_offsets"][0])
            a = array.array("f")
            a.frombytes(f.read(v["data_offsets"][1] - v["data_offsets"][0]))
            out[k] = (v["shape"], a)
        return out
def maxdiff(a, b):
    assert len(a) == len(b), (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))
'

# records FIXTURE: each prompt of FIXTURE's reference.json as an {"ids"}
# record (with its token_type_ids where the reference has them) in $tmp/in.
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

# logits_match NAME FIXTURE DIR: the records in $tmp/in through --task
# logits on the model in DIR, every position within 1e-4 of FIXTURE's
# reference logits.
logits_match() {
	expect "$1" 0 '"logits":[[' "$run" -m "$3" --jsonl --task logits &&
	check "$1" "$FX/$2/reference.safetensors" <<-EOF
	$pyhelpers
	ref = st_read(sys.argv[2])
	for i, line in enumerate(open(sys.argv[1])):
	    got = [x for row in json.loads(line)["logits"] for x in row]
	    d = maxdiff(got, ref["prompt%d.logits" % i][1])
	    assert d <= 1e-4, "prompt %d: max abs diff %g" % (i, d)
	EOF
}

ref=$FX/llama-tiny/reference.json

# 1. {"ids"} records: greedy continuations equal the references, one by
# one and as one left-padded batch of three.
records llama-tiny
for batch in 1 3; do
	expect "greedy ids --batch $batch" 0 '"finish_reason":"length"' \
		"$run" -m "$FX/llama-tiny" --jsonl -n 16 --batch $batch \
		--temperature 0 &&
	check "greedy ids --batch $batch" "$ref" <<-'EOF'
	import json, sys
	out = [json.loads(l) for l in open(sys.argv[1])]
	ref = json.load(open(sys.argv[2]))
	assert len(out) == len(ref["prompts"]), len(out)
	for o, p in zip(out, ref["prompts"]):
	    assert o["ids"] == p["greedy_new_tokens"], (o["ids"], p["greedy_new_tokens"])
	    assert o["usage"]["prompt_tokens"] == len(p["input_ids"])
	    assert o["usage"]["completion_tokens"] == 16
	EOF
done

# 2. --task logits as JSON and as safetensors, for a decoder and an encoder.
for fx in gpt2-tiny qwen3-tiny bert-tiny; do
	records $fx
	logits_match "$fx --task logits" $fx "$FX/$fx"
	expect "$fx --task logits -o" 0 '"shape":[' \
		"$run" -m "$FX/$fx" --jsonl --task logits -o "$tmp/lg.safetensors" &&
	check "$fx --task logits -o" "$FX/$fx/reference.safetensors" \
		"$tmp/lg.safetensors" <<-EOF
	$pyhelpers
	ref = st_read(sys.argv[2])
	got = st_read(sys.argv[3])
	assert len(got) == 3, sorted(got)
	for i in range(3):
	    shape, data = got["logits.%d" % i]
	    assert shape == ref["prompt%d.logits" % i][0], shape
	    d = maxdiff(data, ref["prompt%d.logits" % i][1])
	    assert d <= 1e-4, "prompt %d: max abs diff %g" % (i, d)
	EOF
done

# a single record gives a tensor named "logits"
echo '{"ids":[5,6,7]}' >"$tmp/in"
expect "one record -o" 0 '"record":0' \
	"$run" -m "$FX/llama-tiny" --jsonl --task logits -o "$tmp/one.safetensors" &&
check "one record -o" "$tmp/one.safetensors" <<-EOF
$pyhelpers
got = st_read(sys.argv[2])
assert list(got) == ["logits"], list(got)
assert got["logits"][0] == [3, 512], got["logits"][0]
EOF

# 3. --task embed: mean pooling of the encoders equals mean_pooled.
for fx in bert-tiny roberta-tiny distilbert-tiny; do
	python3 -c "
import json
r = json.load(open('$FX/$fx/reference.json'))
for p in r['prompts']:
    rec = {'ids': p['input_ids']}
    if 'token_type_ids' in p:
        rec['token_type_ids'] = p['token_type_ids']
    print(json.dumps(rec))
" >"$tmp/in"
	expect "$fx --task embed" 0 '"embedding":[' \
		"$run" -m "$FX/$fx" --jsonl --task embed &&
	check "$fx --task embed" "$FX/$fx/reference.json" <<-EOF
	$pyhelpers
	ref = json.load(open(sys.argv[2]))
	for i, line in enumerate(open(sys.argv[1])):
	    e = json.loads(line)["embedding"]
	    d = maxdiff(e, ref["prompts"][i]["mean_pooled"])
	    assert d <= 1e-5, "prompt %d: max abs diff %g" % (i, d)
	EOF
done
echo '{"ids":[2,10,20,30,3]}' >"$tmp/in"
expect "embed --normalize" 0 '"embedding":[' \
	"$run" -m "$FX/bert-tiny" --jsonl --task embed --normalize &&
check "embed --normalize" <<-'EOF'
import json, sys, math
e = json.loads(open(sys.argv[1]).read())["embedding"]
n = math.sqrt(sum(x * x for x in e))
assert abs(n - 1) < 1e-5, n
EOF

# 4. stories260k: text in, llama.cpp's greedy text out.
: >"$tmp/in"
expect "stories260k -p" 0 '"finish_reason":"length"' \
	"$run" -m "$MODELS/stories260k" -p "Once upon a time" -n 64 &&
check "stories260k -p" "$MODELS/stories260k/reference.json" <<-'EOF'
import json, sys
o = json.loads(open(sys.argv[1]).read())
g = json.load(open(sys.argv[2]))["greedy"]
assert o["text"] == g["output_text"], (o["text"], g["output_text"])
assert o["ids"] == g["output_ids"]
EOF
# The same greedy text on the Vulkan device chosen through HF_DEVICE
# (lavapipe in CI), and an unknown device named in the usage error.
: >"$tmp/in"
expect "stories260k HF_DEVICE=vulkan" 0 '"finish_reason":"length"' \
	env HF_DEVICE=vulkan "$run" -m "$MODELS/stories260k" \
	-p "Once upon a time" -n 64 &&
check "stories260k HF_DEVICE=vulkan" "$MODELS/stories260k/reference.json" <<-'EOF'
	import json, sys
	got = json.load(open(sys.argv[1]))
	ref = json.load(open(sys.argv[2]))["greedy"]
	assert got["ids"] == ref["output_ids"], got["ids"]
	assert got["text"] == ref["output_text"], repr(got["text"])
	EOF
expect "HF_DEVICE unknown" 2 "unknown device 'gpu'" \
	env HF_DEVICE=gpu "$run" -m "$MODELS/stories260k" -p x

printf 'Once upon a time\n' >"$tmp/in"
expect "stories260k --stop" 0 '"text":", there was a little girl"' \
	"$run" -m "$MODELS/stories260k" -n 64 --stop " named" &&
check "stories260k --stop" <<-'EOF'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["text"] == ", there was a little girl", o["text"]
assert o["finish_reason"] == "stop", o
EOF
printf '{"prompt":"Once upon a time"}\n{"prompt":"The cat"}\n' >"$tmp/in"
expect "seeded sampling" 0 '"text"' \
	"$run" -m "$MODELS/stories260k" --jsonl -n 24 --temperature 0.9 \
	--top-p 0.9 --seed 7 --logprobs 2
cp "$tmp/out" "$tmp/first"
expect "seeded sampling again" 0 '"text"' \
	"$run" -m "$MODELS/stories260k" --jsonl -n 24 --temperature 0.9 \
	--top-p 0.9 --seed 7 --logprobs 2 --batch 2
cases=$((cases + 1))
cmp -s "$tmp/first" "$tmp/out" ||
	python3 - "$tmp/first" "$tmp/out" <<-'EOF' || fail "same seed, batched: different output"
	import json, sys
	a = [json.loads(l) for l in open(sys.argv[1])]
	b = [json.loads(l) for l in open(sys.argv[2])]
	assert [x["ids"] for x in a] == [x["ids"] for x in b]
	EOF
python3 -c "
import json, sys
sys.stdout.write(json.load(open('$MODELS/stories260k/reference.json'))['prompts'][3]['text'])
" >"$tmp/in"
expect "perplexity" 0 '"perplexity":' \
	"$run" -m "$MODELS/stories260k" --perplexity --ctx 64 --stride 32 &&
check "perplexity" <<-'EOF'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert o["tokens"] == 158, o
assert 1.0 < o["perplexity"] < 20.0, o
EOF

# 5. past the context. RoPE has a position for every token: past
# max_position_embeddings one warning on stderr, and --ctx bounds the
# cache. A learned position table has no more rows: one line, exit 2.
# one_line NAME: stderr of the last case is exactly one line.
one_line() {
	cases=$((cases + 1))
	[ "$(wc -l <"$tmp/err")" = 1 ] ||
		fail "$1: want one line on stderr, got: $(head -c 600 "$tmp/err")"
}
# ids N: one {"ids"} record of N ids in $tmp/in
ids() {
	python3 -c "import sys; n = int(sys.argv[1]); print('{\"ids\": [%s]}' %
', '.join(str(5 + i * 37 % 120) for i in range(n)))" "$1" >"$tmp/in"
}
ids 600
expect "RoPE past max_position_embeddings" 0 '"completion_tokens":4' \
	"$run" -m "$MODELS/stories260k" --jsonl -n 4 &&
one_line "RoPE past max_position_embeddings warns once" &&
grep -qF "past max_position_embeddings (512)" "$tmp/err" ||
	fail "RoPE past max_position_embeddings: no warning: $(cat "$tmp/err")"
expect "prompt longer than --ctx" 1 \
	"600 tokens does not fit a context of 600" \
	"$run" -m "$MODELS/stories260k" --jsonl -n 4 --ctx 600
# qwen3-tiny's weights under rope_scaling yarn (factor 4) and
# max_position_embeddings 64: a 120-token prompt, 64 more greedily
mkdir "$tmp/yarn" &&
ln -s "$FX/qwen3-tiny/model.safetensors" "$tmp/yarn/model.safetensors" &&
python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))
c["max_position_embeddings"] = 64
c["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
print(json.dumps(c))' "$FX/qwen3-tiny/config.json" >"$tmp/yarn/config.json"
ids 120
expect "yarn 120 tokens past 64" 0 '"completion_tokens":64' \
	"$run" -m "$tmp/yarn" --jsonl -n 64 --temperature 0 &&
one_line "yarn past 64 warns once"
ids 200
for model in gpt2-tiny bert-tiny roberta-tiny distilbert-tiny; do
	task=embed
	[ "$model" = gpt2-tiny ] && task=generate
	expect "$model past its position table" 2 \
		"200 tokens does not fit the 128 positions of" \
		"$run" -m "$FX/$model" --jsonl --task $task -n 4 &&
	one_line "$model past its position table"
done
ids 128
expect "gpt2 prompt filling its table" 2 "leave room for one more" \
	"$run" -m "$FX/gpt2-tiny" --jsonl -n 4
expect "roberta input filling its table" 0 '"embedding"' \
	"$run" -m "$FX/roberta-tiny" --jsonl --task embed

# 6. bad input: one line on stderr naming the culprit, exit 1.
printf '\n' >"$tmp/in"
expect "empty prompt" 1 "record 1: empty text: nothing to generate from" "$run" -m "$MODELS/stories260k" -n 4
printf 'ab\377cd\n' >"$tmp/in"
expect "invalid UTF-8" 1 "invalid UTF-8 at byte 2" \
	"$run" -m "$MODELS/stories260k" -n 4
echo '{"ids":[5,6,512]}' >"$tmp/in"
expect "out-of-range id" 1 '"ids"[2] is not a token id' \
	"$run" -m "$FX/llama-tiny" --jsonl -n 4
echo '{"ids":[5,-1]}' >"$tmp/in"
expect "negative id" 1 '"ids"[1]' "$run" -m "$FX/llama-tiny" --jsonl -n 4
echo '{"ids":[]}' >"$tmp/in"
expect "empty ids" 1 'non-empty' "$run" -m "$FX/llama-tiny" --jsonl -n 4
echo '{"ids":[5,6' >"$tmp/in"
expect "malformed JSON" 1 'record 1' "$run" -m "$FX/llama-tiny" --jsonl -n 4
echo 'hello' >"$tmp/in"
expect "text without a tokenizer" 1 'no tokenizer.json' \
	"$run" -m "$FX/llama-tiny" -n 4
expect "encoder cannot generate" 1 'is an encoder' \
	"$run" -m "$FX/bert-tiny" -p hi

bad=$tmp/bad
mkdir -p "$bad"
cp -r "$FX/llama-tiny" "$bad/trunc"
size=$(stat -c %s "$bad/trunc/model.safetensors")
truncate -s $((size - 100)) "$bad/trunc/model.safetensors"
echo '{"ids":[5]}' >"$tmp/in"
expect "truncated safetensors" 1 "model.safetensors" \
	"$run" -m "$bad/trunc" --jsonl -n 2
cp -r "$FX/llama-tiny" "$bad/nokey"
python3 - "$bad/nokey/config.json" <<-'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
del c["hidden_size"]
json.dump(c, open(sys.argv[1], "w"))
EOF
expect "config missing a key" 1 "hidden_size" \
	"$run" -m "$bad/nokey" --jsonl -n 2
cp -r "$FX/llama-tiny" "$bad/arch"
sed -i 's/"model_type": "llama"/"model_type": "llamalike"/' "$bad/arch/config.json"
expect "unknown model_type" 1 "model_type 'llamalike' is not supported" \
	"$run" -m "$bad/arch" --jsonl -n 2
cp -r "$FX/llama-tiny" "$bad/layers"
sed -i 's/"num_hidden_layers": 2/"num_hidden_layers": 3/' "$bad/layers/config.json"
expect "missing tensor" 1 "missing tensor 'model.layers.2." \
	"$run" -m "$bad/layers" --jsonl -n 2
cp -r "$FX/llama-tiny" "$bad/shape"
sed -i 's/"intermediate_size": 128/"intermediate_size": 96/' "$bad/shape/config.json"
expect "misshapen tensor" 1 "expected [96, 64]" \
	"$run" -m "$bad/shape" --jsonl -n 2
expect "missing model" 1 "$tmp/none" "$run" -m "$tmp/none" -p hi

# 5b. loaders and heads on rewritten copies of fixtures (python3 writes
# the safetensors files; the references stay the fixtures' own).
st_rewrite='
import json, struct, sys
def st_rewrite(src, dst, rename, extra=()):
    """Copy src to dst with tensor names mapped by rename (None drops
    one) and extra F32 tensors (name, shape, list of floats) added."""
    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    out, blobs, off = {}, [], 0
    items = [kv for kv in h.items() if kv[0] != "__metadata__"]
    items.sort(key=lambda kv: kv[1]["data_offsets"][0])
    for k, v in items:
        nk = rename(k)
        if nk is None:
            continue
        b = data[v["data_offsets"][0]:v["data_offsets"][1]]
        out[nk] = {"dtype": v["dtype"], "shape": v["shape"],
                   "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    for name, shape, vals in extra:
        b = struct.pack("<%df" % len(vals), *vals)
        out[name] = {"dtype": "F32", "shape": shape,
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(out).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(dst, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
'
mkdir -p "$tmp/pfx"
cp "$FX/gpt2-tiny/config.json" "$FX/gpt2-tiny/generation_config.json" "$tmp/pfx/"
# what save_pretrained writes: transformer. prefix, no attn.bias buffers
python3 -c "$st_rewrite
st_rewrite(sys.argv[1], sys.argv[2],
           lambda k: None if k.endswith('.attn.bias') else 'transformer.' + k)
" "$FX/gpt2-tiny/model.safetensors" "$tmp/pfx/model.safetensors"
records gpt2-tiny
logits_match "gpt2 with transformer. prefix" gpt2-tiny "$tmp/pfx"

# llama-tiny split into two shards under model.safetensors.index.json
mkdir -p "$tmp/shards"
cp "$FX/llama-tiny/config.json" "$FX/llama-tiny/generation_config.json" \
	"$tmp/shards/"
python3 -c "$st_rewrite
a = 'model-00001-of-00002.safetensors'
b = 'model-00002-of-00002.safetensors'
first = lambda k: k.startswith('model.embed') or '.layers.0.' in k
st_rewrite(sys.argv[1], sys.argv[2] + '/' + a, lambda k: k if first(k) else None)
st_rewrite(sys.argv[1], sys.argv[2] + '/' + b, lambda k: None if first(k) else k)
with open(sys.argv[1], 'rb') as f:
    names = [k for k in json.loads(f.read(struct.unpack('<Q', f.read(8))[0]))
             if k != '__metadata__']
json.dump({'metadata': {}, 'weight_map': {k: a if first(k) else b for k in names}},
          open(sys.argv[2] + '/model.safetensors.index.json', 'w'))
" "$FX/llama-tiny/model.safetensors" "$tmp/shards"
records llama-tiny
logits_match "sharded llama-tiny" llama-tiny "$tmp/shards"

# a BERT sequence classifier: bert-tiny plus classifier weights whose
# logits are known: W = 0, b = (0, ln 3), so the scores are 1/4, 3/4
mkdir -p "$tmp/cls"
python3 - "$FX/bert-tiny/config.json" "$tmp/cls/config.json" <<-'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["architectures"] = ["BertForSequenceClassification"]
c["id2label"] = {"0": "NEGATIVE", "1": "POSITIVE"}
c["label2id"] = {"NEGATIVE": 0, "POSITIVE": 1}
json.dump(c, open(sys.argv[2], "w"))
EOF
python3 -c "$st_rewrite
import math
st_rewrite(sys.argv[1], sys.argv[2],
           lambda k: None if k.startswith('cls.') else k,
           [('classifier.weight', [2, 64], [0.0] * 128),
            ('classifier.bias', [2], [0.0, math.log(3.0)])])
" "$FX/bert-tiny/model.safetensors" "$tmp/cls/model.safetensors"
echo '{"ids":[2,10,20,30,3]}' >"$tmp/in"
expect "classify" 0 '"label":"POSITIVE"' \
	"$run" -m "$tmp/cls" --jsonl --task classify &&
check "classify" <<-'EOF'
import json, sys
o = json.loads(open(sys.argv[1]).read())
assert abs(o["score"] - 0.75) < 1e-6, o
assert [s["label"] for s in o["scores"]] == ["POSITIVE", "NEGATIVE"], o
assert abs(o["scores"][1]["score"] - 0.25) < 1e-6, o
EOF
# a decoder classifier (LlamaForSequenceClassification's score head):
# zero weights, so both labels score 1/2
mkdir -p "$tmp/dcls"
python3 - "$FX/llama-tiny/config.json" "$tmp/dcls/config.json" <<-'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["architectures"] = ["LlamaForSequenceClassification"]
c["id2label"] = {"0": "A", "1": "B"}
json.dump(c, open(sys.argv[2], "w"))
EOF
python3 -c "$st_rewrite
st_rewrite(sys.argv[1], sys.argv[2], lambda k: k,
           [('score.weight', [2, 64], [0.0] * 128)])
" "$FX/llama-tiny/model.safetensors" "$tmp/dcls/model.safetensors"
echo '{"ids":[5,6,7,8]}' >"$tmp/in"
expect "decoder classify" 0 '"score":0.5' \
	"$run" -m "$tmp/dcls" --jsonl --task classify
expect "classify without a head" 1 "no sequence classification head" \
	"$run" -m "$FX/bert-tiny" --jsonl --task classify

# fill-mask: bert-tiny with a word-level tokenizer whose ids are its own
# (wN is id N); the fills must be the softmax of the MLM logits at the
# mask, as --task logits gives them for the same ids
mkdir -p "$tmp/fill"
cp "$FX/bert-tiny/config.json" "$FX/bert-tiny/model.safetensors" "$tmp/fill/"
python3 - "$tmp/fill" <<-'EOF'
import json, sys
d = sys.argv[1]
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
vocab = {t: i for i, t in enumerate(special)}
vocab.update({"w%d" % i: i for i in range(5, 512)})
added = [{"id": i, "content": t, "single_word": False, "lstrip": False,
          "rstrip": False, "normalized": False, "special": True}
         for i, t in enumerate(special)]
tok = {"version": "1.0", "truncation": None, "padding": None,
       "added_tokens": added, "normalizer": None,
       "pre_tokenizer": {"type": "WhitespaceSplit"},
       "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3],
                          "cls": ["[CLS]", 2]},
       "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
       "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}}
json.dump(tok, open(d + "/tokenizer.json", "w"))
json.dump({"mask_token": "[MASK]", "cls_token": "[CLS]", "sep_token": "[SEP]"},
          open(d + "/tokenizer_config.json", "w"))
EOF
: >"$tmp/in"
expect "fill-mask" 0 '"position":3' \
	"$run" -m "$tmp/fill" --task fill-mask --top-k 3 -p "w10 w20 [MASK] w30" &&
cp "$tmp/out" "$tmp/fills" &&
echo '{"ids":[2,10,20,4,30,3]}' >"$tmp/in" &&
expect "fill-mask logits" 0 '"logits"' \
	"$run" -m "$tmp/fill" --jsonl --task logits &&
check "fill-mask" "$tmp/fills" <<-'EOF'
import json, sys, math
row = json.loads(open(sys.argv[1]).read())["logits"][3]
m = json.loads(open(sys.argv[2]).read())["masks"]
assert len(m) == 1 and m[0]["position"] == 3, m
fills = m[0]["fills"]
mx = max(row)
z = sum(math.exp(x - mx) for x in row)
best = sorted(range(len(row)), key=lambda i: -row[i])[:3]
assert [f["id"] for f in fills] == best, (fills, best)
for f in fills:
    p = math.exp(row[f["id"]] - mx) / z
    assert abs(f["score"] - p) < 1e-6, (f, p)
    assert f["token"] == "w%d" % f["id"] or f["id"] < 5, f
    assert f["sequence"] == "w10 w20 %s w30" % f["token"], f
EOF
echo 'w10 w20' >"$tmp/in"
expect "fill-mask without a mask" 1 "no mask token in the input" \
	"$run" -m "$tmp/fill" --task fill-mask

# chat: a copy of stories260k with a template that renders the bare text
# after BOS, so the prompt ids and the continuation are the reference's
mkdir -p "$tmp/chat"
cp "$MODELS/stories260k/"* "$tmp/chat/"
python3 - "$tmp/chat/tokenizer_config.json" <<-'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
json.dump(c, open(sys.argv[1], "w"))
EOF
want_ids=$(python3 -c "
import json
print(json.dumps(json.load(open('$MODELS/stories260k/reference.json'))['greedy']['output_ids'][:8]).replace(' ', ''))")
echo '{"messages":[{"role":"user","content":"Once upon a time"}]}' >"$tmp/in"
expect "chat messages record" 0 "\"ids\":$want_ids" \
	"$run" -m "$tmp/chat" --jsonl -n 8 --temperature 0
echo 'Once upon a time' >"$tmp/in"
expect "chat lines" 0 "\"ids\":$want_ids" \
	"$run" -m "$tmp/chat" --chat -n 8 --temperature 0
expect "chat without a template" 1 "no chat template" \
	"$run" -m "$MODELS/stories260k" --chat -n 8
if command -v script >/dev/null; then
	printf 'Once upon a time\n/reset\nOnce upon a time\n/exit\n' >"$tmp/in"
	expect "interactive chat on a terminal" 0 ", there was a little girl" \
		script -qec "'$run' -m '$tmp/chat' --chat -n 8 --temperature 0" /dev/null
	[ "$(grep -c ', there was a little girl' "$tmp/out")" = 2 ] ||
		fail "interactive chat: /reset did not start over: $(cat -A "$tmp/out")"
	# the line editor: Left twice and an insert, then C-a and an insert,
	# give the same prompt as typing it straight
	printf 'upon a tme\033[D\033[Di\001Once \n/exit\n' >"$tmp/in"
	expect "interactive chat, edited line" 0 ", there was a little girl" \
		script -qec "'$run' -m '$tmp/chat' --chat -n 8 --temperature 0" /dev/null
	# no template: the error comes before the first prompt is read
	printf 'hello\n/exit\n' >"$tmp/in"
	cases=$((cases + 1))
	script -qec "'$run' -m '$MODELS/stories260k' --chat -n 8 2>'$tmp/tty-err'" \
		/dev/null <"$tmp/in" >/dev/null 2>&1
	rc=$?
	[ "$rc" = 1 ] && grep -q "no chat template" "$tmp/tty-err" &&
		! grep -q "chatting with" "$tmp/tty-err" ||
		fail "interactive chat without a template: exit $rc: $(cat "$tmp/tty-err")"
fi

# 7. the EXAMPLES of man/hf-run.1, as written there (models/ is linked
# into a scratch directory, where the outputs go).
mkdir -p "$tmp/ex"
ln -s "$MODELS" "$tmp/ex/models"
(
	cd "$tmp/ex" || exit 1
	python3 -c "
import json, sys
sys.stdout.write(json.load(open('models/stories260k/reference.json'))['prompts'][3]['text'])
" >story.txt
	: >"$tmp/in"
	expect "man example greedy" 0 ', there was a little girl named Lily' \
		"$run" -m models/stories260k -p "Once upon a time" -n 64 --temperature 0
	echo '{"ids": [1, 403, 407, 261, 378]}' >"$tmp/in"
	expect "man example logits" 0 '"shape":[5,512]' \
		"$run" -m models/stories260k --jsonl --task logits -o logits.safetensors
	[ -s logits.safetensors ] || fail "man example logits: no logits.safetensors"
	printf 'Once upon a time\n The cat\n' >"$tmp/in"
	expect "man example batch" 0 '"finish_reason"' \
		"$run" -m models/stories260k -n 32 --temperature 0.8 --top-p 0.9 \
		--seed 7 --batch 2
	[ "$(wc -l <"$tmp/out")" = 2 ] || fail "man example batch: want 2 records"
	cp story.txt "$tmp/in"
	expect "man example perplexity" 0 '"perplexity":' \
		"$run" -m models/stories260k --perplexity --ctx 128 --stride 64
	exit "$failed"
) || failed=$((failed + 1))
cases=$((cases + 4))

# 8. usage
expect "help" 0 "usage: hf-run" "$run" -h
expect "bad option" 2 "unknown option '--no-such-option'" "$run" -m "$FX/llama-tiny" --no-such-option
expect "missing value" 2 "option '--temperature' needs a value" "$run" -m "$FX/llama-tiny" --temperature
expect "short option missing value" 2 "option '-n' needs a value" "$run" -m "$FX/llama-tiny" -n
expect "no model" 2 "" "$run" -p hi
expect "dtype f16 not built" 1 "f16 compute is not built" "$run" -m "$FX/llama-tiny" --dtype f16
expect "bad dtype" 2 "" "$run" -m "$FX/llama-tiny" --dtype f8
expect "--version names the kernels" 0 "cpu generic" \
	env HF_CPU=generic "${run%-run}" --version

echo "run: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
