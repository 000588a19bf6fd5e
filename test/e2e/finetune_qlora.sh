#!/bin/bash
# e2e: hf-finetune --lora-r over a quantized base (QLoRA) on stories260k
# (models/stories260k) quantized by hf-quantize --method nf4
# --double-quant:
#  - a LoRA run over the nf4 base gives, step by step, the losses and
#    gradient norms of the same run over hf-quantize --dequantize's float
#    model of it within 1e-5 relative (the quantized product and the
#    tile-dequantized backward against float32 ones); on a wider random
#    model of the same tokenizer the peak RSS (getrusage of the child)
#    stays 8 MiB below the float run's;
#  - the other formats hf-quantize writes (int8, fp4, fp8, bitnet) train
#    the same way, equal to their dequantized models, and so do the
#    fixtures of every layer kind over nf4 (llama, qwen2, mistral, phi3,
#    gpt2, bert); GPT-2's adapter runs over its nf4 model in hf-run;
#  - QLoRA over-fits 16 fixed sentences (e2e/finetune_lora's
#    prompt/completion records) below loss 0.1; the adapter loads in
#    hf-run -m <nf4 model> --adapter, greedy text is the memorized
#    sentence, and its logits equal the float model's with the adapter
#    merged within 1e-4 of the largest;
#  - a run killed by SIGTERM at a random step and resumed gives the
#    uninterrupted run's losses and adapter bit for bit;
#  - full fine-tuning and --grads over the nf4 model: one line naming
#    the quantization, exit 1, nothing written.
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
ft=$BIN/hf-finetune
run=$BIN/hf-run
quant=$BIN/hf-quantize
M=$MODELS/stories260k
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$@" >"$tmp/why" 2>&1 || fail "$name: $(head -c 600 "$tmp/why")"
}

# rss FILE CMD...: run CMD, its peak RSS in KiB into FILE; CMD's status
rss() {
	local out=$1
	shift
	python3 -c '
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:], stdout=open(sys.argv[1] + ".out", "w"), stderr=open(sys.argv[1] + ".err", "w"))
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$out" "$@"
}

python3 - "$tmp" <<'EOF'
import json, sys
d = sys.argv[1]
s = ["Once upon a time, there was a little girl named Lily.",
     "She liked to play in the park with her red ball.",
     "One day, she saw a big dog near the tree.",
     "The dog was sad because it was lost.",
     "Lily wanted to help the dog find its home.",
     "They walked together down the long road.",
     "Tom had a small boat that he loved very much.",
     "He took the boat to the lake every morning.",
     "The sun was warm and the water was blue.",
     "A little bird sang a happy song in the sky.",
     "Mom made a cake for the birthday party.",
     "Ben and Sue shared their toys with each other.",
     "The cat jumped on the bed and fell asleep.",
     "It was a cold night, so they sat by the fire.",
     "The old man gave the boy a shiny coin.",
     "At the end of the day, everyone was happy."]
with open(d + "/s16.jsonl", "w") as f:
    for i, t in enumerate(s):
        f.write(json.dumps({"prompt": "Story %d:" % (i + 1), "completion": " " + t}) + "\n")
EOF

Q=$tmp/nf4
cases=$((cases + 1))
if ! "$quant" -m "$M" --method nf4 --double-quant -o "$Q" >/dev/null 2>"$tmp/err" ||
	! "$quant" -m "$Q" --dequantize -o "$tmp/deq" >/dev/null 2>>"$tmp/err"; then
	fail "hf-quantize: $(cat "$tmp/err")"
	echo "$((cases - failed))/$cases passed"
	exit 1
fi
check "nf4 double-quant base" "$Q" <<'EOF'
import json, struct, sys
c = json.load(open(sys.argv[1] + "/config.json"))["quantization_config"]
assert c["quant_method"] == "bitsandbytes" and c["load_in_4bit"], c
assert c["bnb_4bit_quant_type"] == "nf4" and c["bnb_4bit_use_double_quant"] is True, c
b = open(sys.argv[1] + "/model.safetensors", "rb").read()
h = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])
k = "model.layers.0.self_attn.q_proj.weight"
assert h[k]["dtype"] == "U8" and k + ".nested_absmax" in h, h.get(k)
EOF

# ---- a step over the nf4 base equals one over its dequantized model ----
T=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head
S=(--data "$tmp/s16.jsonl" --batch 4 --lr 5e-3 --max-steps 6 -t 1 --lora-r 8
	--target all-linear --seed 3)
cases=$((cases + 1))
if "$ft" -m "$Q" "${S[@]}" -o "$tmp/sq" >"$tmp/sq.jsonl" 2>"$tmp/err" &&
	"$ft" -m "$tmp/deq" "${S[@]}" -o "$tmp/sd" >"$tmp/sd.jsonl" 2>>"$tmp/err"; then
	check "nf4 steps equal the dequantized model's" "$tmp/sq.jsonl" "$tmp/sd.jsonl" <<'EOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 6, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(y[k]), "step %d %s: %r nf4, %r dequantized" % (x["step"], k, x[k], y[k])
assert a[-1]["loss"] < a[0]["loss"] - 0.3, "no learning: %r" % [x["loss"] for x in a]
EOF
else
	fail "nf4 steps: $(head -c 400 "$tmp/err")"
fi

# ---- peak RSS: the base stays quantized ----
# stories260k's weights (1 MB) are lost in the process's own memory, so
# this runs a wider model on its tokenizer (hidden 256, 4 layers, 2.9M
# parameters, random BF16 weights): 11.6 MB in float32, 1.6 MB in nf4.
W=$tmp/wide
mkdir -p "$W"
cp "$M"/tokenizer* "$M"/special_tokens_map.json "$W"/
python3 - "$M" "$W" <<'EOF'
import json, os, struct, sys
src, dst = sys.argv[1:3]
c = json.load(open(src + "/config.json"))
c.update(hidden_size=256, intermediate_size=688, num_attention_heads=8, num_key_value_heads=4,
         head_dim=32, num_hidden_layers=4, torch_dtype="bfloat16")
json.dump(c, open(dst + "/config.json", "w"))
H, I, V, L, kv = 256, 688, 512, 4, 128
shapes = {"model.embed_tokens.weight": [V, H], "model.norm.weight": [H]}
for l in range(L):
    p = "model.layers.%d." % l
    shapes.update({p + "input_layernorm.weight": [H], p + "post_attention_layernorm.weight": [H],
                   p + "self_attn.q_proj.weight": [H, H], p + "self_attn.k_proj.weight": [kv, H],
                   p + "self_attn.v_proj.weight": [kv, H], p + "self_attn.o_proj.weight": [H, H],
                   p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                   p + "mlp.down_proj.weight": [H, I]})
# bf16 of magnitude 2^-7 .. 2^-5, random sign and mantissa; norms 1.0
sign = bytes(0x3C | (b & 0x80) for b in range(256))
hdr, off, blobs = {}, 0, []
for k, s in shapes.items():
    n = s[0] * (s[1] if len(s) > 1 else 1)
    b = bytearray(2 * n)
    if len(s) == 1:
        b[1::2] = b"\x3f" * n
        b[0::2] = b"\x80" * n
    else:
        r = os.urandom(n)
        b[0::2] = r
        b[1::2] = r.translate(sign)
    hdr[k] = {"dtype": "BF16", "shape": s, "data_offsets": [off, off + 2 * n]}
    off += 2 * n
    blobs.append(bytes(b))
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(dst + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for b in blobs:
        f.write(b)
EOF
S=(--data "$tmp/s16.jsonl" --batch 4 --lr 5e-3 --max-steps 2 -t 1 --lora-r 8 --target all-linear)
cases=$((cases + 1))
if "$quant" -m "$W" --method nf4 --double-quant -o "$W.nf4" >/dev/null 2>"$tmp/err" &&
	"$quant" -m "$W.nf4" --dequantize -o "$W.deq" >/dev/null 2>>"$tmp/err" &&
	rss "$tmp/q.rss" "$ft" -m "$W.nf4" "${S[@]}" -o "$tmp/wq" &&
	rss "$tmp/d.rss" "$ft" -m "$W.deq" "${S[@]}" -o "$tmp/wd"; then
	check "nf4 peak RSS below the float model's" "$tmp/q.rss" "$tmp/d.rss" "$tmp/q.rss.out" "$tmp/d.rss.out" <<'EOF'
import json, sys
q, d = (int(open(p).read()) for p in sys.argv[1:3])
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[3:5])
assert len(a) == len(b) == 2, (a, b)
for x, y in zip(a, b):
    assert abs(x["loss"] - y["loss"]) <= 1e-5 * y["loss"], (x, y)
print("peak RSS (wide model, 2 LoRA steps): nf4 %d KiB, float32 %d KiB" % (q, d))
# float32 holds the weights twice (the mapped file, the training copy)
assert q + 8192 < d, "peak RSS: nf4 %d KiB, float32 %d KiB" % (q, d)
EOF
	cat "$tmp/why"
else
	fail "peak RSS: $(cat "$tmp/err" "$tmp/q.rss.err" "$tmp/d.rss.err" 2>/dev/null | head -c 400)"
fi

# ---- the other formats of hf-quantize: the same mechanism ----
for m in int8 fp4 fp8 bitnet; do
	cases=$((cases + 1))
	S2=(--data "$tmp/s16.jsonl" --batch 4 --lr 5e-3 --max-steps 2 -t 1 --lora-r 4 --target all-linear)
	if "$quant" -m "$M" --method $m -o "$tmp/$m" >/dev/null 2>"$tmp/err" &&
		"$quant" -m "$tmp/$m" --dequantize -o "$tmp/$m.deq" >/dev/null 2>>"$tmp/err" &&
		"$ft" -m "$tmp/$m" "${S2[@]}" -o "$tmp/$m.o" >"$tmp/$m.q" 2>>"$tmp/err" &&
		"$ft" -m "$tmp/$m.deq" "${S2[@]}" -o "$tmp/$m.d" >"$tmp/$m.f" 2>>"$tmp/err"; then
		check "$m steps equal the dequantized model's" "$tmp/$m.q" "$tmp/$m.f" <<'EOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 2, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(y[k]), "step %d %s: %r quantized, %r dequantized" % (x["step"], k, x[k], y[k])
EOF
	else
		fail "$m: $(head -c 400 "$tmp/err")"
	fi
done

# ---- the fixtures of each layer kind: llama-style (llama, qwen2's q/k/v
# biases, mistral's sliding window, phi3's fused projections), GPT-2,
# an encoder (bert, masked-LM loss); GPT-2's adapter over nf4 runs in
# hf-run with the logits of the merged float model ----
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
python3 -c '
import json
for i in range(8):
    ids = [1 + (i * 7 + j * 13) % 90 for j in range(12)]
    print(json.dumps({"ids": ids, "labels": ids}))' >"$tmp/ids.jsonl"
for f in llama-tiny qwen2-tiny mistral-tiny phi3-tiny gpt2-tiny bert-tiny; do
	cases=$((cases + 1))
	S2=(--data "$tmp/ids.jsonl" --batch 4 --lr 5e-3 --max-steps 3 -t 1 --lora-r 4 --target all-linear)
	if "$quant" -m "$FX/$f" --method nf4 --double-quant -o "$tmp/$f" >/dev/null 2>"$tmp/err" &&
		"$quant" -m "$tmp/$f" --dequantize -o "$tmp/$f.deq" >/dev/null 2>>"$tmp/err" &&
		"$ft" -m "$tmp/$f" "${S2[@]}" -o "$tmp/$f.o" >"$tmp/$f.q" 2>>"$tmp/err" &&
		"$ft" -m "$tmp/$f.deq" "${S2[@]}" -o "$tmp/$f.d" >"$tmp/$f.f" 2>>"$tmp/err"; then
		check "$f over nf4: steps equal the dequantized model's" "$tmp/$f.q" "$tmp/$f.f" <<'EOF'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
assert len(a) == len(b) == 3, (len(a), len(b))
for x, y in zip(a, b):
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(y[k]), "step %d %s: %r nf4, %r dequantized" % (x["step"], k, x[k], y[k])
EOF
	else
		fail "$f over nf4: $(head -c 400 "$tmp/err")"
	fi
done
cases=$((cases + 1))
echo '{"ids": [1, 5, 9, 20, 33]}' >"$tmp/in"
G=$tmp/gpt2-tiny
if "$run" -m "$G" --adapter "$G.o" --jsonl --task logits <"$tmp/in" >"$tmp/lq" 2>"$tmp/err" &&
	"$run" -m "$G.deq" --adapter "$G.o" --merge --jsonl --task logits <"$tmp/in" >"$tmp/ld" 2>>"$tmp/err" &&
	"$run" -m "$G" --jsonl --task logits <"$tmp/in" >"$tmp/lb" 2>>"$tmp/err"; then
	check "gpt2 adapter over nf4: logits equal the merged float model's" "$tmp/lq" "$tmp/ld" "$tmp/lb" <<'EOF'
import json, sys
def flat(p):
    return [x for l in open(p) for row in json.loads(l)["logits"] for x in row]
a, b, base = (flat(p) for p in sys.argv[1:4])
assert a and len(a) == len(b) == len(base)
top = max(abs(x) for x in a)
d = max(abs(x - y) for x, y in zip(a, b))
assert d <= 1e-4 * top, "largest difference %g (largest logit %g)" % (d, top)
assert max(abs(x - y) for x, y in zip(a, base)) > 1e-3, "the adapter changes nothing"
EOF
else
	fail "gpt2 adapter over nf4: hf-run: $(head -c 400 "$tmp/err")"
fi

# ---- QLoRA over-fits; the adapter runs over the nf4 model ----
O=(-m "$Q" --data "$tmp/s16.jsonl" --batch 4 --lr 1e-2 --schedule linear --epochs 15 -t 1
	--lora-r 16 --lora-alpha 32 --target "$T")
cases=$((cases + 1))
"$ft" "${O[@]}" -o "$tmp/ql" >"$tmp/a.jsonl" 2>"$tmp/err" ||
	fail "qlora overfit: exit $?: $(cat "$tmp/err")"
check "qlora overfit: loss below 0.1" "$tmp/a.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 60, "%d steps, want 60" % len(recs)
assert recs[0]["loss"] > 1.0, "first loss %g: not a fresh start" % recs[0]["loss"]
assert recs[-1]["loss"] < 0.1, "last loss %g, want < 0.1" % recs[-1]["loss"]
EOF
check "qlora: a PEFT adapter directory" "$tmp/ql" <<'EOF'
import json, os, sys
out = sys.argv[1]
assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors"], os.listdir(out)
c = json.load(open(out + "/adapter_config.json"))
assert c["r"] == 16 and c["lora_alpha"] == 32 and c["peft_type"] == "LORA", c
EOF
cases=$((cases + 1))
echo '{"prompt": "Story 5:"}' >"$tmp/in"
if "$run" -m "$Q" --adapter "$tmp/ql" --jsonl -n 12 <"$tmp/in" >"$tmp/g" 2>"$tmp/err"; then
	check "qlora: greedy text over the nf4 model is the memorized sentence" "$tmp/g" <<'EOF'
import json, sys
a = json.loads(open(sys.argv[1]).read())["text"]
assert a.startswith("Lily wanted to help"), a
EOF
else
	fail "qlora: hf-run -m nf4 --adapter: $(head -c 400 "$tmp/err")"
fi
cases=$((cases + 1))
echo '{"text": "Story 5: Lily wanted"}' >"$tmp/in"
if "$run" -m "$Q" --adapter "$tmp/ql" --jsonl --task logits <"$tmp/in" >"$tmp/lq" 2>"$tmp/err" &&
	"$run" -m "$tmp/deq" --adapter "$tmp/ql" --merge --jsonl --task logits <"$tmp/in" >"$tmp/ld" 2>>"$tmp/err" &&
	"$run" -m "$Q" --jsonl --task logits <"$tmp/in" >"$tmp/lb" 2>>"$tmp/err"; then
	check "qlora: logits over nf4 equal the merged float model's" "$tmp/lq" "$tmp/ld" "$tmp/lb" <<'EOF'
import json, sys
def flat(p):
    return [x for l in open(p) for row in json.loads(l)["logits"] for x in row]
a, b, base = (flat(p) for p in sys.argv[1:4])
assert a and len(a) == len(b) == len(base)
top = max(abs(x) for x in a)
d = max(abs(x - y) for x, y in zip(a, b))
assert d <= 1e-4 * top, "largest difference %g (largest logit %g)" % (d, top)
assert max(abs(x - y) for x, y in zip(a, base)) > 1e-2, "the adapter changes nothing"
EOF
else
	fail "qlora: hf-run logits: $(head -c 400 "$tmp/err")"
fi

# ---- resume after a kill reproduces the run bit for bit ----
k=$((RANDOM % 50 + 5))
cases=$((cases + 1))
rm -f "$tmp/fifo"
mkfifo "$tmp/fifo"
"$ft" "${O[@]}" -o "$tmp/b" >"$tmp/fifo" 2>"$tmp/b.err" &
pid=$!
n=0
while IFS= read -r line; do
	echo "$line" >>"$tmp/b.jsonl"
	n=$((n + 1))
	[ "$n" = "$k" ] && kill -TERM "$pid"
done <"$tmp/fifo"
wait "$pid"
rc=$?
[ "$rc" = 143 ] || fail "qlora resume: killed at step $k: exit $rc, want 143: $(cat "$tmp/b.err")"
cases=$((cases + 1))
"$ft" "${O[@]}" --resume "$tmp/b" -o "$tmp/b" >>"$tmp/b.jsonl" 2>"$tmp/err" ||
	fail "qlora resume: the resumed run: exit $?: $(cat "$tmp/err")"
check "qlora resume: losses bit for bit (killed at step $k)" "$tmp/a.jsonl" "$tmp/b.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert [r["step"] for r in b] == list(range(1, 61)), "steps %s" % [r["step"] for r in b]
for x, y in zip(a, b):
    for k in ("loss", "lr", "grad_norm", "epoch"):
        assert x[k] == y[k], "step %d %s: %r uninterrupted, %r resumed" % (x["step"], k, x[k], y[k])
EOF
cases=$((cases + 1))
cmp -s "$tmp/ql/adapter_model.safetensors" "$tmp/b/adapter_model.safetensors" ||
	fail "qlora resume: the resumed adapter differs from the uninterrupted one"

# ---- full fine-tuning over a quantized base: one line, nothing written ----
echo '{"ids": [1, 403, 407, 261, 378], "labels": [1, 403, 407, 261, 378]}' >"$tmp/one.jsonl"
for a in "--data $tmp/s16.jsonl --max-steps 1 -o $tmp/full" "--data $tmp/one.jsonl --grads $tmp/g.safetensors"; do
	cases=$((cases + 1))
	# shellcheck disable=SC2086
	"$ft" -m "$Q" $a >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != 1 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q "nf4" "$tmp/err" ||
		! grep -q "full fine-tuning" "$tmp/err" || [ -e "$tmp/full" ] || [ -e "$tmp/g.safetensors" ]; then
		fail "full fine-tuning over nf4 ($a): exit $rc, stderr: $(cat "$tmp/err")"
	fi
done

echo "$((cases - failed))/$cases passed"
[ "$failed" = 0 ]
