#!/bin/bash
# e2e: llama.cpp itself (node-llama-cpp's prebuilt libllama, through
# test/runtimes/llamacpp.c) proves the GGUF files of hf-export. For every
# model fixture and models/stories260k, at every type hf-export writes:
#   - llama.cpp loads the file and scores the fixture's prompts; its logits
#     (decoders) or mean-pooled embeddings (encoders) match hf-run's on the
#     HF directory: at f32 within the fixtures' float32 bars, at the other
#     types within the bounds below (measured, with their margins);
#   - at f32 its argmax equals hf-run's at every position, and stories260k
#     gives the greedy ids of hf-run and of its reference.json (which
#     llama.cpp made);
#   - for q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K the tensors of
#     `hf-export --type T` are byte for byte those llama_model_quantize
#     (what llama-quantize runs, default parameters, no importance matrix)
#     writes from our f32 export: same names, types, shapes and bytes;
#   - llama.cpp's tokenizer, read from the exported file, gives hf-tokenize's
#     ids on the tokenizer corpus for stories260k (the model fixture that
#     carries a tokenizer) and for the gpt2, llama3_1 and deepseek_v3
#     tokenizer fixtures on models made for them;
#   - rope_scaling: Phi-3 LongRoPE and Llama YaRN variants of the fixtures;
#   - tq1_0/tq2_0 on a BitNet checkpoint of llama-tiny, likewise.
# Needs the runtimes of scripts/bootstrap-runtimes (test/runtimes): without
# them it exits 77, which meson reports as skipped. The checks are python3
# over the two programs' outputs; nothing is compared with our own earlier
# output.
set -u
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
RT=${HF_RUNTIMES:-$ROOT/test/runtimes}
read -r -a wrap <<<"${HF_EXE_WRAPPER:-}"
export HF_HUB_OFFLINE=1 HF_PROGRESS=0

case $(uname -m) in
x86_64) plat=linux-x64 ;;
aarch64) plat=linux-arm64 ;;
*) plat=unknown ;;
esac
LIBS=$RT/node_modules/@node-llama-cpp/$plat/bins/$plat
HDR=$RT/llama.cpp
if [ ! -d "$RT/node_modules" ] || [ ! -f "$HDR/include/llama.h" ] ||
   [ ! -f "$HDR/ggml/include/gguf.h" ]; then
	echo "SKIP: llama.cpp runtime missing ($RT/node_modules, $HDR): run scripts/bootstrap-runtimes" >&2
	exit 77
fi
if [ ! -d "$LIBS" ]; then
	echo "SKIP: node-llama-cpp has no prebuilt llama.cpp for $(uname -m) ($LIBS)" >&2
	exit 77
fi
if [ ! -x "$BIN/hf-export" ]; then
	echo "FAIL: $BIN/hf-export missing" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# The harness, compiled once against the headers of the release the
# prebuilt libraries come from.
lcpp=$tmp/llamacpp
# shellcheck disable=SC2046
if ! ${CC:-cc} -std=c11 -O2 -I"$HDR/include" -I"$HDR/ggml/include" \
	$(pkg-config --cflags jansson 2>/dev/null) \
	"$ROOT/test/runtimes/llamacpp.c" -o "$lcpp" -L"$LIBS" \
	-l:libllama.v0.4.0.so -l:libggml.v0.4.0.so -l:libggml-base.so \
	$(pkg-config --libs jansson 2>/dev/null || echo -ljansson) \
	-Wl,-rpath,"$LIBS" 2>"$tmp/cc.err"; then
	echo "FAIL: compiling test/runtimes/llamacpp.c: $(head -c 2000 "$tmp/cc.err")" >&2
	exit 1
fi
export LLAMACPP_LIBS=$LIBS
# the CPU variant ggml picks here, found once: loading them all to choose
# costs more per run than scoring a tiny model
if ! LLAMACPP_BACKEND=$("$lcpp" backend 2>"$tmp/err"); then
	echo "FAIL: llama.cpp loads no CPU backend from $LIBS: $(head -c 600 "$tmp/err")" >&2
	exit 1
fi
export LLAMACPP_BACKEND

# check NAME PYTHON ARGS...: the python3 program PYTHON on ARGS; it says
# why on failure, and what it measured on its last line of stdout, kept in
# $tmp/measured.
check() {
	local name=$1 code=$2
	shift 2
	cases=$((cases + 1))
	if python3 -c "$code" "$@" </dev/null >"$tmp/why" 2>&1; then
		[ -s "$tmp/why" ] && echo "$name: $(tail -n 1 "$tmp/why")" >>"$tmp/measured"
	else
		fail "$name: $(head -c 800 "$tmp/why")"
	fi
}

# ok NAME CMD...: CMD exits 0 (stdout to $tmp/out, stderr to $tmp/err).
ok() {
	local name=$1 rc
	shift
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != 0 ]; then
		fail "$name: exit $rc: $(grep -v '^warning: \|WARNING\|^load' "$tmp/err" | head -c 600)"
		return 1
	fi
	return 0
}

# Types hf-export writes for a float model (tq1_0/tq2_0, for BitNet
# checkpoints, are proven on one below), and those whose blocks must
# equal llama-quantize's.
types="f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K"
quant_types="q8_0 q4_0 q4_1 q5_0 q5_1 q4_K q5_K q6_K"

# Bounds, per type, on llama.cpp against hf-run over every logit (or
# embedding value) of a fixture's prompts. f32 holds the largest
# difference to the fixtures' float32 bars (README: 1e-4 for logits, 1e-5
# for embeddings; stories260k: 1e-3, its reference.json, for 159-token
# prompts and logits near 22) and wants the same argmax everywhere, except
# that ggml's CPU GELU (ggml-cpu/vec.h, GGML_GELU_FP16) rounds its input to
# f16 and looks the result up in a table: the GELU families (gpt2, gemma,
# the encoders) measured 1.1e-3 on logits and 5e-4 on embeddings, against
# 1e-5 for the SiLU ones, so they get 2e-3 and 1e-3. The other types compare
# hf-run's f32 compute on the HF weights with llama.cpp's arithmetic on the
# rounded ones (its CPU matmul rounds the activations too, to f16, bf16 or
# q8 blocks), so they hold the relative RMS error (RMS of the differences
# over the RMS of hf-run's values). Largest measured over all fixtures at
# each type (in the comment), bound about twice that. Random-weight tiny
# models lose much to 4- and 5-bit blocks (a 64-wide row is 2 blocks, and
# mixtral's router flips experts); a wrong tensor, layout or norm gives
# unrelated logits, relative RMS near 1.4. That the blocks are the right
# ones is the byte-for-byte check against llama-quantize below.
bound() { # TYPE KIND(logits|embed|stories) GELU(0|1)
	case $1:$2:$3 in
	f32:logits:0) echo abs:1e-4 ;;
	f32:logits:1) echo abs:2e-3 ;;
	f32:embed:*) echo abs:1e-3 ;;
	f32:stories:*) echo abs:1e-3 ;;
	f16:*) echo rel:0.0025 ;;	# 0.00108 gemma-tiny
	bf16:*) echo rel:0.025 ;;	# 0.0121 llama-tiny-untied
	q8_0:*) echo rel:0.15 ;;	# 0.0767 mixtral-tiny
	q6_K:*) echo rel:0.15 ;;	# 0.0767 mixtral-tiny (rows < 256: q8_0)
	q5_0:*) echo rel:0.5 ;;		# 0.262 mixtral-tiny
	q5_1:*) echo rel:0.5 ;;		# 0.249 mixtral-tiny
	q5_K:*) echo rel:0.5 ;;		# 0.243 mixtral-tiny
	q4_K:*) echo rel:0.5 ;;		# 0.255 mixtral-tiny
	q4_0:*) echo rel:0.8 ;;		# 0.445 mixtral-tiny
	q4_1:*) echo rel:0.8 ;;		# 0.423 mixtral-tiny
	tq1_0:*|tq2_0:*) echo rel:0.5 ;; # 0.245 llama-tiny-bitnet (rows < 256)
	*) echo "no bound for type $1" >&2; echo rel:0 ;;
	esac
}

# prompts FIXTURE_DIR: the id lists of its reference.json as
# "1,2,3" arguments (one per line) and as {"ids"} records in $tmp/in.
prompts() {
	python3 - "$1/reference.json" "$tmp/in" <<-'EOF'
	import json, sys
	r = json.load(open(sys.argv[1]))
	lists = [p.get("input_ids", p.get("ids")) for p in r["prompts"]]
	with open(sys.argv[2], "w") as f:
	    for ids in lists:
	        f.write(json.dumps({"ids": ids}) + "\n")
	for ids in lists:
	    print(",".join(map(str, ids)))
	EOF
}

# compare LLAMACPP HFRUN KEY BOUND STRICT: BOUND "abs:x" holds the largest
# |difference| to x, "rel:x" the RMS of the differences over the RMS of
# hf-run's values; STRICT 1 wants the same argmax at every position.
compare='
import json, math, sys
a_path, b_path, key, bound, strict = sys.argv[1:6]
kind, bound = bound.split(":")
bound = float(bound)
def rows(p):
    out = []
    for line in open(p):
        v = json.loads(line)[key]
        out.append(v if key == "logits" else [v])
    return out
a, b = rows(a_path), rows(b_path)
assert len(a) == len(b), "%d records from llama.cpp, %d from hf-run" % (len(a), len(b))
worst, where, flips, n, sd, sy = 0.0, None, 0, 0, 0.0, 0.0
for p, (ra, rb) in enumerate(zip(a, b)):
    assert len(ra) == len(rb), "prompt %d: %d rows vs %d" % (p, len(ra), len(rb))
    for t, (x, y) in enumerate(zip(ra, rb)):
        assert len(x) == len(y), "prompt %d row %d: %d values vs %d" % (p, t, len(x), len(y))
        for i, (u, v) in enumerate(zip(x, y)):
            assert math.isfinite(u), "prompt %d row %d value %d: llama.cpp gives %r" % (p, t, i, u)
            d = abs(u - v)
            sd += d * d
            sy += v * v
            if d > worst:
                worst, where = d, (p, t, i, u, v)
        if key == "logits":
            n += 1
            if max(range(len(x)), key=x.__getitem__) != max(range(len(y)), key=y.__getitem__):
                flips += 1
rel = math.sqrt(sd / sy) if sy else 0.0
p, t, i, u, v = where or (0, 0, 0, 0, 0)
got = "max |diff| %.3g at prompt %d row %d index %d (llama.cpp %g, hf-run %g), relative RMS %.3g" % (worst, p, t, i, u, v, rel)
if key == "logits":
    got += ", argmax differs at %d of %d positions" % (flips, n)
assert (worst if kind == "abs" else rel) <= bound, "%s: over the bound %s %g" % (got, kind, bound)
assert strict != "1" or flips == 0, got
print(got + "; bound %s %g" % (kind, bound))
'

# The ids hf-run and llama.cpp put out, and those of reference.json.
greedy_cmp='
import json, sys
ours = json.loads(open(sys.argv[1]).read().splitlines()[-1])["ids"]
lc = json.loads(open(sys.argv[2]).read())["ids"]
ref = json.load(open(sys.argv[3]))["greedy"]["output_ids"]
n = len(ref)
assert lc == ref, "llama.cpp greedy %s, reference.json %s" % (lc, ref)
assert ours[-n:] == lc, "hf-run greedy %s, llama.cpp %s" % (ours[-n:], lc)
print("%d greedy ids equal" % n)
'

tok_cmp='
import json, sys
ours = [json.loads(l)["ids"] for l in open(sys.argv[1])]
lc = [json.loads(l)["ids"] for l in open(sys.argv[2])]
corpus = [json.loads(l)["text"] for l in open(sys.argv[3])]
# transformers ids: "BOS,EOS" (either may be empty) around hf-tokenize --no-special
if len(sys.argv) > 4:
    b, e = sys.argv[4].split(",")
    ours = [([int(b)] if b else []) + x + ([int(e)] if e else []) for x in ours]
assert len(ours) == len(lc) == len(corpus), (len(ours), len(lc), len(corpus))
bad = [i for i in range(len(corpus)) if ours[i] != lc[i]]
if bad:
    i = bad[0]
    raise SystemExit("%d of %d corpus strings differ; first %r: hf-tokenize %s, llama.cpp %s"
                     % (len(bad), len(corpus), corpus[i], ours[i], lc[i]))
print("%d corpus strings, same ids" % len(corpus))
'

# EXPORT_MODELS="llama-tiny stories260k" runs only those (by hand, while
# working on one family); the default is every fixture
models=()
for d in "$FX"/models/*/ "$MODELS/stories260k/"; do
	quick_skip "$d" && continue
	d=${d%/}
	[ -f "$d/config.json" ] || continue
	case " ${EXPORT_MODELS:-$(basename "$d")} " in
	*" $(basename "$d") "*) models+=("$d") ;;
	esac
done

# prove NAME DIR HFDIR REFDIR TYPES QTYPES: export DIR at each of TYPES,
# score REFDIR's prompts with llama.cpp against hf-run on HFDIR (DIR
# itself, or the quantized checkpoint DIR was dequantized from), and hold
# the tensors at each of QTYPES against llama_model_quantize's of the f32
# export.
prove() {
	local name=$1 dir=$2 hfdir=$3 ref=$4 types=$5 qtypes=$6 t g strict
	# encoders' references hold mean-pooled embeddings, decoders' logits
	local kind=logits task=logits key=logits gelu=0 lists
	if grep -q '"mean_pooled"' "$ref/reference.json"; then
		kind=embed task=embed key=embedding
	fi
	[ "$name" = stories260k ] && kind=stories
	grep -Eq '"(hidden_act|hidden_activation|activation|activation_function)": *"gelu' \
		"$dir/config.json" && gelu=1
	mapfile -t lists < <(prompts "$ref")
	ok "$name: hf-run --task $task" "${wrap[@]}" "$BIN/hf-run" -m "$hfdir" \
		--jsonl --task "$task" <"$tmp/in" || return
	mv "$tmp/out" "$tmp/$name.hf.jsonl"
	for t in $types; do
		g=$tmp/$name.$t.gguf
		ok "$name $t: hf-export" "${wrap[@]}" "$BIN/hf-export" -m "$dir" \
			--format gguf --type "$t" -o "$g" </dev/null || continue
		ok "$name $t: llama.cpp $task" "$lcpp" "$task" "$g" "${lists[@]}" ||
			continue
		mv "$tmp/out" "$tmp/$name.$t.lc.jsonl"
		strict=0
		[ "$t" = f32 ] && strict=1
		check "$name $t: llama.cpp against hf-run" "$compare" \
			"$tmp/$name.$t.lc.jsonl" "$tmp/$name.hf.jsonl" \
			"$key" "$(bound "$t" "$kind" "$gelu")" "$strict"
	done
	for t in $qtypes; do
		[ -f "$tmp/$name.$t.gguf" ] && [ -f "$tmp/$name.f32.gguf" ] || continue
		ok "$name $t: llama_model_quantize of the f32 export" "$lcpp" \
			quantize "$tmp/$name.f32.gguf" "$tmp/$name.$t.ref.gguf" "$t" ||
			continue
		ok "$name $t: tensors equal llama-quantize's" "$lcpp" tensors \
			"$tmp/$name.$t.gguf" "$tmp/$name.$t.ref.gguf" &&
			echo "$name $t: $(cat "$tmp/out")" >>"$tmp/measured"
		rm -f "$tmp/$name.$t.ref.gguf"
	done
	# keep the disk small; stories260k's f32 file serves below
	[ "$name" = stories260k ] && mv "$tmp/$name.f32.gguf" "$tmp/keep.gguf" 2>/dev/null
	rm -f "$tmp/$name".*.gguf
	[ -f "$tmp/keep.gguf" ] && mv "$tmp/keep.gguf" "$tmp/$name.f32.gguf"
}

for dir in "${models[@]}"; do
	prove "$(basename "$dir")" "$dir" "$dir" "$dir" "$types" "$quant_types"
done

# rope_scaling that llama.cpp reads from the file: Phi-3's LongRoPE
# (rope_factors_long / rope_factors_short tensors, rope.scaling.attn_factor)
# and Llama's YaRN (rope.scaling.type, factor, original_context_length,
# yarn_beta_fast / yarn_beta_slow), on the fixtures' prompts at f32. Not
# YaRN's attention_factor: transformers uses it in place of
# 0.1 ln(factor) + 1, llama.cpp's ggml_rope_ext multiplies its
# yarn_attn_factor by that (measured: max |diff| 0.68 on llama-tiny with
# attention_factor 1.25, 5e-6 without); the converter writes the key all
# the same, and e2e/export_from holds that it comes back.
if [ -z "${EXPORT_MODELS:-}" ] || [[ " $EXPORT_MODELS " == *" rope "* ]]; then
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
                         "beta_fast": 16.0, "beta_slow": 2.0}
json.dump(c, open(dst + "/config.json", "w"))
'
	for r in "phi3-tiny longrope" "llama-tiny yarn"; do
		set -- $r
		cases=$((cases + 1))
		python3 -c "$mkrope" "$FX/models/$1" "$tmp/rope-$2" "$2" ||
			{ fail "rope $2: making the model"; continue; }
		prove "$1-$2" "$tmp/rope-$2" "$tmp/rope-$2" "$FX/models/$1" f32 ""
		rm -rf "$tmp/rope-$2"
	done
fi

# tq1_0 and tq2_0 are for BitNet checkpoints: llama-tiny through
# hf-quantize --method bitnet (ternary weights, one scale a tensor), whose
# dequantized directory hf-export reads (it takes float weights). hf-run
# scores the BitNet checkpoint itself: the f32 export must give its logits
# within the float32 bar, and the TQ blocks must be llama-quantize's.
if [ -z "${EXPORT_MODELS:-}" ] || [[ " $EXPORT_MODELS " == *" bitnet "* ]]; then
	bn=$tmp/llama-tiny-bitnet
	if ok "bitnet: hf-quantize --method bitnet" "${wrap[@]}" "$BIN/hf-quantize" \
		-m "$FX/models/llama-tiny" --method bitnet -o "$bn" </dev/null &&
	   ok "bitnet: hf-quantize --dequantize" "${wrap[@]}" "$BIN/hf-quantize" \
		-m "$bn" --dequantize -o "$bn-float" </dev/null; then
		prove llama-tiny-bitnet "$bn-float" "$bn" "$FX/models/llama-tiny" \
			"f32 tq1_0 tq2_0" "tq1_0 tq2_0"
	fi
fi

# stories260k: greedy decoding and the tokenizer, from its f32 export.
s=$MODELS/stories260k
g=$tmp/stories260k.f32.gguf
if [ -f "$g" ]; then
	ids=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["greedy"]["prompt_ids"])))' "$s/reference.json")
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["greedy"]["output_ids"]))' "$s/reference.json")
	echo "{\"ids\": [$ids]}" >"$tmp/greedy.in"
	if ok "stories260k: hf-run greedy" "${wrap[@]}" "$BIN/hf-run" -m "$s" --jsonl \
		--temperature 0 --max-tokens "$n" <"$tmp/greedy.in"; then
		mv "$tmp/out" "$tmp/greedy.hf"
		ok "stories260k: llama.cpp greedy" "$lcpp" greedy "$g" "$ids" "$n" &&
			check "stories260k: greedy ids" "$greedy_cmp" "$tmp/greedy.hf" \
				"$tmp/out" "$s/reference.json"
	fi
	corpus=$FX/tokenizers/corpus.jsonl
	if ok "stories260k: hf-tokenize" "${wrap[@]}" "$BIN/hf-tokenize" -m "$s" \
		--jsonl <"$corpus"; then
		mv "$tmp/out" "$tmp/tok.hf"
		ok "stories260k: llama.cpp tokenize" "$lcpp" tokenize "$g" --jsonl \
			<"$corpus" &&
			check "stories260k: tokenizer" "$tok_cmp" "$tmp/tok.hf" \
				"$tmp/out" "$corpus"
	fi
elif [ -z "${EXPORT_MODELS:-}" ]; then
	fail "stories260k: no f32 export to run greedy decoding and the tokenizer on"
fi

# The tokenizer fixtures that llama.cpp's tokenizer follows exactly, each
# on a model made for it here: tokenizer.json (+ tokenizer_config.json) of
# test/fixtures/tokenizers/<name>, a one-layer llama of the tokenizer's
# vocabulary size with zero weights (only the vocabulary is read: llamacpp
# tokenize loads vocab_only). deepseek_v3's tokenizer_config.json names
# LlamaTokenizerFast with add_bos_token, so transformers (whose
# update_post_processor replaces tokenizer.json's post-processor) and
# llama.cpp (tokenizer.ggml.add_bos_token, as the converter writes it)
# put BOS first where tokenizers' tokenizer.json, which hf-tokenize
# follows, adds none: it is held to transformers' ids, BOS and then
# hf-tokenize --no-special's. The others were measured and left out, for
# differences of llama.cpp's own tokenizer from HF's, not of the file:
#   qwen3 (13 of 279): llama.cpp runs no NFC normalizer, "cafe" + U+0301
#     gives hf-tokenize [924, 58858], llama.cpp [924, 1859, 53839]; and it
#     makes any token spelled "</s>" an end-of-generation control token
#     (llama-vocab.cpp, "control-looking token"), so the text "</s>" gives
#     hf-tokenize [522, 82, 29], llama.cpp [128247] (a normal token of
#     qwen3's vocabulary).
#   bert-base-uncased (15 of 279, on a bert model): llama.cpp's WordPiece
#     has no max_input_chars_per_word, so a 100-character word of "a"s
#     gives hf-tokenize [101, 100, 102] ([UNK]), llama.cpp [101, 13360,
#     11057, ...]; it also splits "vertical\vtab" ([101, 7471, 2696, 2497,
#     ...] against [101, 7471, 21628, ...]), Hangul, Devanagari and Bengali
#     differently.
#   llama2, llama2-nonlegacy (94 and 98 of 279): no tokenizer.model, so
#     the converter's _set_vocab_llama_hf, which hf-export follows (see
#     e2e/export), gives every token the score -1000 and llama.cpp's
#     SentencePiece merges then go by position, not by BPE rank: "a  b"
#     gives hf-tokenize [1, 264, 28705, 287], llama.cpp [1, 264, 259, 28726].
#   pegasus, wordlevel: hf-export refuses them (a Unigram tokenizer.json
#     without tokenizer.model, a WordLevel one).
mkmodel='
import json, os, struct, sys
src, out = sys.argv[1], sys.argv[2]
tok = json.load(open(os.path.join(src, "tokenizer.json")))
ids = list(tok["model"]["vocab"].values()) + [a["id"] for a in tok.get("added_tokens", [])]
V, H, I = max(ids) + 1, 16, 32
os.makedirs(out)
for f in ("tokenizer.json", "tokenizer_config.json"):
    if os.path.exists(os.path.join(src, f)):
        open(os.path.join(out, f), "wb").write(open(os.path.join(src, f), "rb").read())
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
           "intermediate_size": I, "vocab_size": V, "max_position_embeddings": 64,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
           "hidden_act": "silu"}, open(os.path.join(out, "config.json"), "w"))
t = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H],
     "model.layers.0.input_layernorm.weight": [H],
     "model.layers.0.post_attention_layernorm.weight": [H]}
for n, shape in (("self_attn.q_proj", [H, H]), ("self_attn.k_proj", [H, H]),
                 ("self_attn.v_proj", [H, H]), ("self_attn.o_proj", [H, H]),
                 ("mlp.gate_proj", [I, H]), ("mlp.up_proj", [I, H]), ("mlp.down_proj", [H, I])):
    t["model.layers.0.%s.weight" % n] = shape
hdr, off = {}, 0
for n, shape in t.items():
    k = 2 * shape[0] * (shape[1] if len(shape) > 1 else 1)
    hdr[n] = {"dtype": "BF16", "shape": shape, "data_offsets": [off, off + k]}
    off += k
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + bytes(off))
'
for tk in gpt2 llama3_1 deepseek_v3; do
	[ -z "${EXPORT_MODELS:-}" ] || [[ " $EXPORT_MODELS " == *" $tk "* ]] || continue
	corpus=$FX/tokenizers/corpus.jsonl
	m=$tmp/tok-$tk
	cases=$((cases + 1))
	python3 -c "$mkmodel" "$FX/tokenizers/$tk" "$m" 2>"$tmp/err" ||
		{ fail "tokenizer $tk: making its model: $(head -c 400 "$tmp/err")"; continue; }
	ok "tokenizer $tk: hf-export" "${wrap[@]}" "$BIN/hf-export" -m "$m" \
		--format gguf --type f32 -o "$m.gguf" </dev/null || continue
	# transformers' Llama fast tokenizer: add_bos_token / add_eos_token
	# of tokenizer_config.json around the unadorned ids
	around=$(python3 -c '
import json, os, sys
d = sys.argv[1]
p = os.path.join(d, "tokenizer_config.json")
tc = json.load(open(p)) if os.path.exists(p) else {}
if tc.get("tokenizer_class") not in ("LlamaTokenizerFast", "LlamaTokenizer"):
    sys.exit(0)
ids = {a["content"]: a["id"] for a in json.load(open(os.path.join(d, "tokenizer.json")))["added_tokens"]}
def tid(k, on):
    e = tc.get(k)
    e = e.get("content") if isinstance(e, dict) else e
    return str(ids[e]) if on and e in ids else ""
print(tid("bos_token", tc.get("add_bos_token", True)) + "," + tid("eos_token", tc.get("add_eos_token", False)))' "$m")
	ok "tokenizer $tk: hf-tokenize" "${wrap[@]}" "$BIN/hf-tokenize" -m "$m" \
		--jsonl ${around:+--no-special} <"$corpus" || continue
	mv "$tmp/out" "$tmp/tok.hf"
	ok "tokenizer $tk: llama.cpp tokenize" "$lcpp" tokenize "$m.gguf" --jsonl \
		<"$corpus" &&
		check "tokenizer $tk" "$tok_cmp" "$tmp/tok.hf" "$tmp/out" "$corpus" \
			${around:+"$around"}
	rm -rf "$m" "$m.gguf"
done

# Controls, that the checks above can fail: another model's file scored on
# llama-tiny's prompts is over even the loosest bound, and a tensor whose
# bytes differ in one bit is found.
if [ -f "$tmp/llama-tiny.hf.jsonl" ] && [ -d "$FX/models/mistral-tiny" ]; then
	mapfile -t lists < <(prompts "$FX/models/llama-tiny")
	if ok "control: hf-export mistral-tiny" "${wrap[@]}" "$BIN/hf-export" \
		-m "$FX/models/mistral-tiny" --format gguf --type f32 \
		-o "$tmp/control.gguf" </dev/null &&
	   ok "control: llama.cpp logits" "$lcpp" logits "$tmp/control.gguf" "${lists[@]}"; then
		cases=$((cases + 1))
		if python3 -c "$compare" "$tmp/out" "$tmp/llama-tiny.hf.jsonl" logits \
			rel:0.8 0 </dev/null >"$tmp/why" 2>&1; then
			fail "control: mistral-tiny's logits pass for llama-tiny's: $(tail -n 1 "$tmp/why")"
		else
			echo "control: mistral-tiny for llama-tiny: $(tail -n 1 "$tmp/why")" >>"$tmp/measured"
		fi
		cp "$tmp/control.gguf" "$tmp/control2.gguf"
		python3 -c '
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    f.seek(os.path.getsize(p) - 64)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 1]))
' "$tmp/control2.gguf"
		cases=$((cases + 1))
		if "$lcpp" tensors "$tmp/control.gguf" "$tmp/control2.gguf" >"$tmp/out" 2>"$tmp/err"; then
			fail "control: llamacpp tensors misses a flipped bit"
		elif ! grep -q "bytes differ first at byte" "$tmp/err"; then
			fail "control: llamacpp tensors says: $(head -c 400 "$tmp/err")"
		fi
	fi
fi

[ -f "$tmp/measured" ] && sed 's/^/  /' "$tmp/measured" >&2
if [ "$failed" -gt 0 ]; then
	echo "$failed of $cases checks failed" >&2
	exit 1
fi
echo "export_llamacpp: $cases checks passed"
