#!/bin/bash
# e2e: PEFT LoRA adapters in hf-run (--adapter, --merge, --merge -o) and
# hf-export --merge-adapter. The adapters are made here by hand in the
# layout of docs/peft-lora.md (python3 writing safetensors, no torch):
# random A and non-zero B on each fixture's own module names. The logits
# of hf-run --adapter (an extra low-rank product per linear) must equal
# those of the adapter merged at load, of the merged directory hf-run
# writes, and of a reference model merged here in python (W + scale B A
# in double, written as float32), within float tolerance. Bad adapters
# get one clear line and exit 1.
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
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

# check NAME ARGS... <<PYTHON: a python3 check; it prints why on failure.
check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$@" >"$tmp/why" 2>&1 ||
		fail "$name: $(head -c 600 "$tmp/why")"
}

# The safetensors reader and writer the helpers share: every dtype of
# the fixtures decoded to Python floats, float32 written.
cat >"$tmp/st.py" <<'EOF'
import json, os, struct

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    meta = h.pop("__metadata__", None)
    out = {}
    for k, v in h.items():
        s, e = v["data_offsets"]
        b = data[s:e]
        cnt = 1
        for d in v["shape"]:
            cnt *= d
        dt = v["dtype"]
        if dt == "F32":
            x = list(struct.unpack("<%df" % cnt, b))
        elif dt == "BF16":
            hs = struct.unpack("<%dH" % cnt, b)
            x = list(struct.unpack("<%df" % cnt,
                                   struct.pack("<%dI" % cnt, *[q << 16 for q in hs])))
        elif dt == "F16":
            x = list(struct.unpack("<%de" % cnt, b))
        else:
            x = None    # buffers (I64 ...) are not needed
        out[k] = (dt, v["shape"], x, b)
    return out, meta

def write(path, tensors):
    """tensors: name -> (shape, floats) written as F32."""
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(tensors):
        shape, x = tensors[k]
        b = struct.pack("<%df" % len(x), *x)
        hdr[k] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def modules(fx_dir):
    """The linear modules by transformers' name: name -> (tensor, in,
    out, conv1d), from the fixture's own tensor names and config."""
    cfg = json.load(open(os.path.join(fx_dir, "config.json")))
    t, _ = read(os.path.join(fx_dir, "model.safetensors"))
    gpt2 = cfg["model_type"] == "gpt2"
    out = {}
    for k, (dt, shape, _, _) in t.items():
        if not k.endswith(".weight") or len(shape) != 2 or "embed" in k \
           or k.startswith(("wte", "wpe", "transformer.wte", "transformer.wpe")):
            continue
        name = k[:-7]
        if ".pooler." in k and cfg["architectures"][0].endswith("ForMaskedLM"):
            continue    # built without a pooler: not a module
        if gpt2 and not name.startswith("transformer."):
            name = "transformer." + name
        if gpt2:
            out[name] = (k, shape[0], shape[1], True)
        else:
            out[name] = (k, shape[1], shape[0], False)
    arch = cfg["architectures"][0]
    if arch.endswith(("ForCausalLM", "LMHeadModel")) and "lm_head" not in out:
        # a tied head: a module without a tensor of its own
        out["lm_head"] = (None, cfg.get("hidden_size", cfg.get("n_embd")),
                          cfg["vocab_size"], False)
    return out
EOF

# mkadapter FIXTURE OUT R ALPHA RSLORA TARGETS [BAD]: an adapter of
# FIXTURE's modules whose names end in one of TARGETS (comma-separated),
# A uniform in +-1/sqrt(in), B uniform in +-0.2 (non-zero: the adapted
# model differs from the base). BAD: "shape" gives the first lora_A one
# column too many; "noconfig" leaves adapter_config.json out.
mkadapter() {
	python3 - "$FX/$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" <<-'EOF'
	import json, os, random, sys
	sys.path.insert(0, os.environ["TMPD"])
	import st
	fx, out, r, alpha, rslora, targets, bad = sys.argv[1:8]
	r, alpha = int(r), float(alpha)
	targets = targets.split(",")
	random.seed(hash(out) & 0xffff)
	os.makedirs(out, exist_ok=True)
	mods = st.modules(fx)
	tensors = {}
	for name, (_, fin, fout, _) in sorted(mods.items()):
	    if not any(name == t or name.endswith("." + t) for t in targets):
	        continue
	    a_in = fin + 1 if bad == "shape" and not tensors else fin
	    A = [random.uniform(-1, 1) / fin ** 0.5 for _ in range(r * a_in)]
	    B = [random.uniform(-0.2, 0.2) for _ in range(fout * r)]
	    tensors["base_model.model.%s.lora_A.weight" % name] = ([r, a_in], A)
	    tensors["base_model.model.%s.lora_B.weight" % name] = ([fout, r], B)
	st.write(os.path.join(out, "adapter_model.safetensors"), tensors)
	cfg = json.load(open(os.path.join(fx, "config.json")))
	conf = {"peft_type": "LORA",
	        "task_type": "FEATURE_EXTRACTION" if "bert" in cfg["model_type"] else "CAUSAL_LM",
	        "base_model_name_or_path": fx, "revision": None, "r": r,
	        "lora_alpha": alpha, "lora_dropout": 0.05, "bias": "none",
	        "target_modules": targets,
	        "fan_in_fan_out": cfg["model_type"] == "gpt2",
	        "use_rslora": rslora == "1", "use_dora": False,
	        "init_lora_weights": True, "modules_to_save": None,
	        "inference_mode": True, "layers_to_transform": None,
	        "layers_pattern": None, "rank_pattern": {}, "alpha_pattern": {},
	        "exclude_modules": None, "lora_bias": False,
	        "target_parameters": None, "peft_version": "0.17.0"}
	if bad != "noconfig":
	    with open(os.path.join(out, "adapter_config.json"), "w") as f:
	        f.write(json.dumps(conf, indent=2, sort_keys=True))
	EOF
}
export TMPD=$tmp

# refmerge MODEL_DIR ADAPTER OUT: the reference merged model, all
# float32, W + scale * B A summed in double (Conv1D: the transpose).
refmerge() {
	python3 - "$1" "$2" "$3" <<-'EOF'
	import json, os, shutil, sys
	sys.path.insert(0, os.environ["TMPD"])
	import st
	fx, ad, out = sys.argv[1:4]
	os.makedirs(out)
	conf = json.load(open(os.path.join(ad, "adapter_config.json")))
	r, alpha = conf["r"], conf["lora_alpha"]
	scale = alpha / r ** 0.5 if conf.get("use_rslora", False) else alpha / r
	base, _ = st.read(os.path.join(fx, "model.safetensors"))
	lora, _ = st.read(os.path.join(ad, "adapter_model.safetensors"))
	mods = st.modules(fx)
	res = {k: (v[1], v[2]) for k, v in base.items() if v[2] is not None}
	for name, (tk, fin, fout, conv) in mods.items():
	    ka = "base_model.model.%s.lora_A.weight" % name
	    if ka not in lora:
	        continue
	    A = lora[ka][2]
	    B = lora["base_model.model.%s.lora_B.weight" % name][2]
	    shape, W = res[tk]
	    W = list(W)
	    for o in range(fout):
	        for i in range(fin):
	            d = scale * sum(B[o * r + k] * A[k * fin + i] for k in range(r))
	            if conv:
	                W[i * fout + o] += d
	            else:
	                W[o * fin + i] += d
	    res[tk] = (shape, W)
	st.write(os.path.join(out, "model.safetensors"), res)
	for f in os.listdir(fx):
	    if f.endswith(".json") and not f.startswith("reference"):
	        shutil.copy(os.path.join(fx, f), out)
	EOF
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

# compare A B TOL [DIFFER]: the --task logits records of A and B agree
# within TOL times the largest |logit|; with DIFFER, they must differ by
# more than 1e-3 somewhere instead (the adapter changes the model).
compare='
import json, sys
def flat(p):
    return [x for l in open(p) for row in json.loads(l)["logits"] for x in row]
a, b = flat(sys.argv[1]), flat(sys.argv[2])
tol = float(sys.argv[3])
assert a and len(a) == len(b), (len(a), len(b))
top = max(abs(x) for x in a)
i, d = max(enumerate(abs(x - y) for x, y in zip(a, b)), key=lambda t: t[1])
if len(sys.argv) > 4:
    assert d > 1e-3 * top, "the adapter changes nothing: largest difference %g" % d
else:
    assert d <= tol * top, "logit %d: %g vs %g (largest %g)" % (i, a[i], b[i], top)
'

logits() {	# NAME OUTFILE CMD...: --task logits records into OUTFILE
	local name=$1 o=$2
	shift 2
	expect "$name" 0 '"logits":[[' "$@" --jsonl --task logits &&
		cp "$tmp/out" "$o"
}

# 1. per fixture: adapter vs merged at load vs merged dir vs reference
#    fixture | targets | r | alpha | rslora
while read -r fx targets r alpha rs; do
	ad=$tmp/$fx-ad
	mkadapter "$fx" "$ad" "$r" "$alpha" "$rs" "$targets"
	refmerge "$FX/$fx" "$ad" "$tmp/$fx-ref"
	records "$fx"
	logits "$fx base" "$tmp/base.jsonl" "$run" -m "$FX/$fx" || continue
	logits "$fx --adapter" "$tmp/ad.jsonl" "$run" -m "$FX/$fx" --adapter "$ad" || continue
	logits "$fx --adapter --merge" "$tmp/mg.jsonl" "$run" -m "$FX/$fx" \
		--adapter "$ad" --merge || continue
	logits "$fx reference merge" "$tmp/ref.jsonl" "$run" -m "$tmp/$fx-ref" || continue
	expect "$fx --merge -o" 0 "$tmp/$fx-merged" "$run" -m "$FX/$fx" \
		--adapter "$ad" --merge -o "$tmp/$fx-merged" || continue
	logits "$fx merged dir" "$tmp/dir.jsonl" "$run" -m "$tmp/$fx-merged" || continue
	check "$fx: the adapter changes the logits" "$tmp/base.jsonl" \
		"$tmp/ad.jsonl" 0 differ <<<"$compare"
	# 1e-5: the same float32 sums, the delta added before or after
	check "$fx: unmerged = merged at load" "$tmp/ad.jsonl" "$tmp/mg.jsonl" \
		1e-5 <<<"$compare"
	check "$fx: unmerged = reference merge" "$tmp/ad.jsonl" \
		"$tmp/ref.jsonl" 1e-5 <<<"$compare"
	# the merged directory holds W + delta in the base's dtype: exact
	# for float32 bases, bf16 rounding of each weight (2^-8 relative)
	# for the others
	tol=1e-5
	grep -q '"torch_dtype": "float32"' "$FX/$fx/config.json" || tol=2e-2
	check "$fx: merged dir = reference merge" "$tmp/dir.jsonl" \
		"$tmp/ref.jsonl" "$tol" <<<"$compare"
	check "$fx: merged dir layout" "$FX/$fx" "$tmp/$fx-merged" <<-'EOF'
	import os, sys
	sys.path.insert(0, os.environ["TMPD"])
	import st
	src, out = sys.argv[1:3]
	a, _ = st.read(os.path.join(src, "model.safetensors"))
	b, meta = st.read(os.path.join(out, "model.safetensors"))
	assert meta == {"format": "pt"}, meta
	assert set(a) == set(b), sorted(set(a) ^ set(b))
	changed = [k for k in a if a[k][3] != b[k][3]]
	assert changed, "no tensor changed"
	for k in a:
	    assert a[k][:2] == b[k][:2], (k, a[k][:2], b[k][:2])
	for f in os.listdir(src):
	    if f.endswith(".json") and not f.startswith("reference"):
	        assert open(os.path.join(src, f)).read() == \
	            open(os.path.join(out, f)).read(), f + " differs"
	assert not [f for f in os.listdir(out) if "adapter" in f or ".tmp" in f]
	EOF
done <<'EOF'
llama-tiny q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj 4 8 0
gpt2-tiny c_attn,c_proj,c_fc 3 6 1
bert-tiny query,value,dense 5 16 0
phi3-tiny qkv_proj,gate_up_proj 2 4 0
EOF

# 1c. modules_to_save: a SEQ_CLS adapter as PEFT saves one, LoRA on
#     q_proj and v_proj and the classifier head "score" trained whole
#     (saved as base_model.model.score.weight). The base is llama-tiny with
#     a random score head (LlamaForSequenceClassification, float32).
python3 - "$FX/llama-tiny" "$tmp/cls" "$tmp/cls-ad" <<'EOF2'
import json, os, random, sys
sys.path.insert(0, os.environ["TMPD"])
import st
fx, out, ad = sys.argv[1:4]
random.seed(11)
t, _ = st.read(os.path.join(fx, "model.safetensors"))
res = {k: (v[1], v[2]) for k, v in t.items() if v[2] is not None}
res["score.weight"] = ([3, 64], [random.uniform(-0.3, 0.3) for _ in range(192)])
os.makedirs(out)
st.write(os.path.join(out, "model.safetensors"), res)
c = json.load(open(os.path.join(fx, "config.json")))
c["architectures"] = ["LlamaForSequenceClassification"]
c["torch_dtype"] = "float32"
json.dump(c, open(os.path.join(out, "config.json"), "w"), indent=2)
lora = {}
for l in range(2):
    for n, o in (("q_proj", 64), ("v_proj", 32)):
        m = "base_model.model.model.layers.%d.self_attn.%s" % (l, n)
        lora[m + ".lora_A.weight"] = ([4, 64], [random.uniform(-0.1, 0.1) for _ in range(256)])
        lora[m + ".lora_B.weight"] = ([o, 4], [random.uniform(-0.2, 0.2) for _ in range(4 * o)])
lora["base_model.model.score.weight"] = ([3, 64], [random.uniform(-0.3, 0.3) for _ in range(192)])
os.makedirs(ad)
st.write(os.path.join(ad, "adapter_model.safetensors"), lora)
with open(os.path.join(ad, "adapter_config.json"), "w") as f:
    f.write(json.dumps({"peft_type": "LORA", "task_type": "SEQ_CLS", "r": 4,
                        "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                        "modules_to_save": ["score"], "bias": "none"},
                       indent=2, sort_keys=True))
EOF2
refmerge "$tmp/cls" "$tmp/cls-ad" "$tmp/cls-ref"
python3 - "$tmp/cls-ad" "$tmp/cls-ref" <<'EOF2'
import os, sys
sys.path.insert(0, os.environ["TMPD"])
import st
ad, ref = sys.argv[1:3]
a, _ = st.read(os.path.join(ad, "adapter_model.safetensors"))
r, _ = st.read(os.path.join(ref, "model.safetensors"))
r = {k: (v[1], v[2]) for k, v in r.items()}
r["score.weight"] = (a["base_model.model.score.weight"][1], a["base_model.model.score.weight"][2])
st.write(os.path.join(ref, "model.safetensors"), r)
EOF2
classes='
import json, sys
def sc(p):
    return [sorted((s["id"], s["score"]) for s in json.loads(l)["scores"]) for l in open(p)]
a, b = sc(sys.argv[1]), sc(sys.argv[2])
assert a and len(a) == len(b)
for x, y in zip(a, b):
    for (i, u), (j, v) in zip(x, y):
        assert i == j and abs(u - v) <= 1e-5, (x, y)
if len(sys.argv) > 3:
    assert a != sc(sys.argv[3]), "the adapter changes nothing"
'
records llama-tiny
expect "cls base" 0 '"scores"' "$run" -m "$tmp/cls" --jsonl --task classify &&
	cp "$tmp/out" "$tmp/c0.jsonl"
expect "cls --adapter" 0 '"scores"' "$run" -m "$tmp/cls" --adapter "$tmp/cls-ad" \
	--jsonl --task classify && cp "$tmp/out" "$tmp/c1.jsonl"
expect "cls reference" 0 '"scores"' "$run" -m "$tmp/cls-ref" --jsonl \
	--task classify && cp "$tmp/out" "$tmp/c2.jsonl"
: >"$tmp/in"
expect "cls --merge -o" 0 "" "$run" -m "$tmp/cls" --adapter "$tmp/cls-ad" \
	--merge -o "$tmp/cls-merged"
records llama-tiny
expect "cls merged dir" 0 '"scores"' "$run" -m "$tmp/cls-merged" --jsonl \
	--task classify && cp "$tmp/out" "$tmp/c3.jsonl"
check "modules_to_save: --adapter = reference" "$tmp/c1.jsonl" "$tmp/c2.jsonl" \
	"$tmp/c0.jsonl" <<<"$classes"
check "modules_to_save: merged dir = reference" "$tmp/c3.jsonl" "$tmp/c2.jsonl" \
	<<<"$classes"

# 1b. generation replays recorded decode steps: the adapter's products
#     must be in the recording. Greedy ids of the unmerged adapter equal
#     the merged ones (and differ from the base's), CPU and Vulkan.
gen_ids() {	# NAME OUT CMD...: the "ids" of each generated record
	local name=$1 o=$2
	shift 2
	expect "$name" 0 '"ids":[' "$@" --jsonl -n 12 &&
		python3 -c 'import json, sys
for l in open(sys.argv[1]): print(json.loads(l)["ids"])' "$tmp/out" >"$o"
}
records llama-tiny
devs=cpu
echo '{"ids": [5, 6]}' | "$run" -m "$FX/llama-tiny" --device vulkan \
	--jsonl --task logits >/dev/null 2>&1 && devs="cpu vulkan"
for dev in $devs; do
	gen_ids "$dev generate base" "$tmp/g0" "$run" -m "$FX/llama-tiny" \
		--device $dev &&
	gen_ids "$dev generate --adapter" "$tmp/g1" "$run" -m "$FX/llama-tiny" \
		--device $dev --adapter "$tmp/llama-tiny-ad" &&
	gen_ids "$dev generate --merge" "$tmp/g2" "$run" -m "$FX/llama-tiny" \
		--device $dev --adapter "$tmp/llama-tiny-ad" --merge || continue
	cases=$((cases + 1))
	cmp -s "$tmp/g1" "$tmp/g2" ||
		fail "$dev: greedy ids with the adapter: $(cat "$tmp/g1") merged: $(cat "$tmp/g2")"
	cases=$((cases + 1))
	cmp -s "$tmp/g0" "$tmp/g1" && fail "$dev: the adapter changes no greedy id"
done

# 2. bad adapters: one clear line naming the culprit
records llama-tiny
mkadapter llama-tiny "$tmp/none" 4 8 0 no_such_proj
expect "targets nothing" 1 "match no module" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/none" --jsonl --task logits
mkadapter llama-tiny "$tmp/shape" 4 8 0 q_proj,v_proj shape
expect "shape mismatch" 1 "has shape [4, 65], expected [4, 64]" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/shape" --jsonl --task logits
mkadapter llama-tiny "$tmp/nocfg" 4 8 0 q_proj noconfig
expect "no adapter_config.json" 1 "no adapter_config.json" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/nocfg" --jsonl --task logits
expect "no such adapter" 1 "no such adapter directory" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/absent" --jsonl --task logits
mkadapter llama-tiny "$tmp/dora" 4 8 0 q_proj
sed -i 's/"use_dora": false/"use_dora": true/' "$tmp/dora/adapter_config.json"
expect "DoRA refused" 1 "use_dora" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/dora" --jsonl --task logits
expect "--merge without --adapter" 2 "--merge needs --adapter" \
	"$run" -m "$FX/llama-tiny" --merge
mkdir -p "$tmp/exists"
expect "--merge -o onto a directory" 1 "exists" \
	"$run" -m "$FX/llama-tiny" --adapter "$tmp/llama-tiny-ad" --merge \
	-o "$tmp/exists"
mkadapter gpt2-tiny "$tmp/head" 2 4 0 lm_head
expect "merge into a tied head" 1 "tied to the embeddings" \
	"$run" -m "$FX/gpt2-tiny" --adapter "$tmp/head" --merge -o "$tmp/head-m"
[ -e "$tmp/head-m" ] && fail "a refused merge left $tmp/head-m"

# 2b. --adapter org/name resolves through the Hub cache as -m does: the
#     llama-tiny adapter in a cache snapshot gives the directory's logits
commit=0123456789abcdef0123456789abcdef01234567
snap=$tmp/hub/models--me--tiny-lora/snapshots/$commit
mkdir -p "$snap" "$tmp/hub/models--me--tiny-lora/refs"
printf %s "$commit" >"$tmp/hub/models--me--tiny-lora/refs/main"
cp "$tmp/llama-tiny-ad"/adapter_* "$snap/"
records llama-tiny
logits "--adapter from the cache" "$tmp/hub.jsonl" env HF_HUB_CACHE="$tmp/hub" \
	"$run" -m "$FX/llama-tiny" --adapter me/tiny-lora &&
	logits "--adapter the directory" "$tmp/dir.jsonl" "$run" -m "$FX/llama-tiny" \
		--adapter "$tmp/llama-tiny-ad" &&
	check "cache = directory" "$tmp/hub.jsonl" "$tmp/dir.jsonl" 0 <<<"$compare"
expect "--adapter not in the cache" 1 "not in the cache" env \
	HF_HUB_CACHE="$tmp/hub" "$run" -m "$FX/llama-tiny" --adapter me/absent \
	--jsonl --task logits

# 3. hf-export --merge-adapter: the GGUF of the adapter folded in equals
#    the GGUF of the directory hf-run --merge -o wrote, byte for byte
#    (both directories named "model": general.name comes from it)
if [ -x "$BIN/hf-export" ]; then
	: >"$tmp/in"
	for fx in llama-tiny gpt2-tiny; do
		mkdir -p "$tmp/gg-$fx"
		expect "$fx --merge -o for export" 0 "" "$run" -m "$FX/$fx" \
			--adapter "$tmp/$fx-ad" --merge -o "$tmp/gg-$fx/model" || continue
		expect "$fx hf-export --merge-adapter" 0 "$tmp/gg-$fx/a.gguf" \
			"$BIN/hf-export" -m "$FX/$fx" --merge-adapter "$tmp/$fx-ad" \
			--format gguf --type f32 -o "$tmp/gg-$fx/a.gguf" || continue
		expect "$fx hf-export of the merged dir" 0 "$tmp/gg-$fx/b.gguf" \
			"$BIN/hf-export" -m "$tmp/gg-$fx/model" --format gguf \
			--type f32 -o "$tmp/gg-$fx/b.gguf" || continue
		expect "$fx hf-export of the base" 0 "$tmp/gg-$fx/c.gguf" \
			"$BIN/hf-export" -m "$FX/$fx" --format gguf \
			--type f32 -o "$tmp/gg-$fx/c.gguf" || continue
		cases=$((cases + 1))
		cmp -s "$tmp/gg-$fx/a.gguf" "$tmp/gg-$fx/b.gguf" ||
			fail "$fx: hf-export --merge-adapter differs from the merged directory's export"
		cases=$((cases + 1))
		cmp -s "$tmp/gg-$fx/a.gguf" "$tmp/gg-$fx/c.gguf" &&
			fail "$fx: hf-export --merge-adapter changed nothing"
	done
	expect "hf-export --merge-adapter of nothing" 1 "match no module" \
		"$BIN/hf-export" -m "$FX/llama-tiny" --merge-adapter "$tmp/none" \
		--format gguf --type f32 -o "$tmp/none.gguf"
	[ -e "$tmp/none.gguf" ] && fail "a refused export left $tmp/none.gguf"
else
	echo "# hf-export is not built: --merge-adapter not checked" >&2
fi

# 4. a quantized base (QLoRA's NF4 and int8): the unmerged adapter runs
#    on the packed weights, merged at load on their dequantized floats;
#    both equal the reference merge of the dequantized model (the same
#    float weights). Writing a merged quantized model is refused.
q=$BIN/hf-quantize
records llama-tiny
for m in nf4 int8; do
	: >"$tmp/in"
	expect "quantize $m" 0 "" "$q" -m "$FX/llama-tiny" --method $m \
		-o "$tmp/q-$m" || continue
	expect "dequantize $m" 0 "" "$q" -m "$tmp/q-$m" --dequantize \
		-o "$tmp/q-$m-f" || continue
	refmerge "$tmp/q-$m-f" "$tmp/llama-tiny-ad" "$tmp/q-$m-ref"
	records llama-tiny
	logits "$m --adapter" "$tmp/qa.jsonl" "$run" -m "$tmp/q-$m" \
		--adapter "$tmp/llama-tiny-ad" || continue
	logits "$m --adapter --merge" "$tmp/qm.jsonl" "$run" -m "$tmp/q-$m" \
		--adapter "$tmp/llama-tiny-ad" --merge || continue
	logits "$m reference" "$tmp/qr.jsonl" "$run" -m "$tmp/q-$m-ref" || continue
	# 1e-4: as quantize.sh's quantized vs dequantized (the kernels
	# dequantize in registers; float32 sums in another order)
	check "$m: unmerged = reference" "$tmp/qa.jsonl" "$tmp/qr.jsonl" 1e-4 <<<"$compare"
	check "$m: merged at load = reference" "$tmp/qm.jsonl" "$tmp/qr.jsonl" 1e-5 <<<"$compare"
	expect "$m: --merge -o refused" 1 "a quantized base" "$run" -m "$tmp/q-$m" \
		--adapter "$tmp/llama-tiny-ad" --merge -o "$tmp/q-$m-merged"
done

# 5. the Vulkan backend runs adapters too (when there is one): unmerged
#    and merged, on separate and fused (GPT-2 c_attn) projections
if echo '{"ids": [5, 6]}' | "$run" -m "$FX/llama-tiny" --device vulkan \
	--jsonl --task logits >/dev/null 2>&1; then
	for fx in llama-tiny gpt2-tiny; do
		records $fx
		for mg in "" --merge; do
			logits "$fx vulkan --adapter $mg" "$tmp/vk.jsonl" "$run" \
				-m "$FX/$fx" --device vulkan --adapter "$tmp/$fx-ad" $mg &&
				logits "$fx cpu --adapter $mg" "$tmp/cpu.jsonl" "$run" \
					-m "$FX/$fx" --adapter "$tmp/$fx-ad" $mg &&
				check "$fx: vulkan = cpu with an adapter $mg" \
					"$tmp/vk.jsonl" "$tmp/cpu.jsonl" 1e-4 <<<"$compare"
		done
	done
else
	echo "# no Vulkan device: adapters checked on the CPU only" >&2
fi

echo "adapter: $cases cases, $failed failed"
[ "$failed" = 0 ]
