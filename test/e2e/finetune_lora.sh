#!/bin/bash
# e2e: hf-finetune --lora-r on stories260k (models/stories260k): LoRA on
# 16 fixed sentences (prompt/completion records, as e2e/finetune) drives
# the loss below 0.1 (every linear and the tied head adapted: with the
# base frozen its final norm bounds the logits, so the head is needed);
# the output is a PEFT adapter directory (adapter_config.json with PEFT's
# fields, adapter_model.safetensors of base_model.model.*.lora_[AB]
# tensors) that hf-run loads, unmerged logits equal merged ones within
# 1e-5 of the largest, and greedy text is the memorized sentence;
# resume: a run with dropout resumed from its checkpoint-4 writes the
# uninterrupted run's adapter bit for bit
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
ft=$BIN/hf-finetune
run=$BIN/hf-run
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

T=q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head
cases=$((cases + 1))
# a linear decay, as e2e/finetune: at a constant 5e-3 the last steps'
# losses still jump (0.01 to 0.22), and which sentence a prompt recalls
# then hangs on the rounding of the products (float or double sums)
if ! "$ft" -m "$M" --data "$tmp/s16.jsonl" --batch 4 --lr 5e-3 --schedule linear \
	--epochs 40 -t 1 --lora-r 16 --lora-alpha 32 --target "$T" \
	-o "$tmp/lora" >"$tmp/m.jsonl" 2>"$tmp/err"; then
	fail "lora overfit: exit $?: $(cat "$tmp/err")"
fi
check "lora overfit: loss below 0.1" "$tmp/m.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 160, "%d steps, want 160" % len(recs)
assert recs[0]["loss"] > 1.0, "first loss %g: not a fresh start" % recs[0]["loss"]
assert recs[-1]["loss"] < 0.1, "last loss %g, want < 0.1" % recs[-1]["loss"]
EOF
check "lora: a PEFT adapter directory" "$tmp/lora" "$M" <<'EOF'
import json, os, struct, sys
out, base = sys.argv[1], sys.argv[2]
assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors"], os.listdir(out)
c = json.load(open(out + "/adapter_config.json"))
assert c["r"] == 16 and c["lora_alpha"] == 32, c
assert c["peft_type"] == "LORA" and c["task_type"] == "CAUSAL_LM", c
assert c["lora_dropout"] == 0.0 and c["use_rslora"] is False, c
assert sorted(c["target_modules"]) == sorted("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,lm_head".split(",")), c["target_modules"]
b = open(out + "/adapter_model.safetensors", "rb").read()
n, = struct.unpack("<Q", b[:8])
h = json.loads(b[8:8 + n])
assert h.pop("__metadata__") == {"format": "pt"}
cfg = json.load(open(base + "/config.json"))
L, H, I, V = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
kv = cfg["num_key_value_heads"] * cfg["head_dim"]
want = {}
for l in range(L):
    for m, i, o in (("self_attn.q_proj", H, H), ("self_attn.k_proj", H, kv), ("self_attn.v_proj", H, kv),
                    ("self_attn.o_proj", H, H), ("mlp.gate_proj", H, I), ("mlp.up_proj", H, I),
                    ("mlp.down_proj", I, H)):
        want["base_model.model.model.layers.%d.%s.lora_A.weight" % (l, m)] = [16, i]
        want["base_model.model.model.layers.%d.%s.lora_B.weight" % (l, m)] = [o, 16]
want["base_model.model.lm_head.lora_A.weight"] = [16, H]
want["base_model.model.lm_head.lora_B.weight"] = [V, 16]
assert sorted(h) == sorted(want), set(h).symmetric_difference(want)
for k, v in h.items():
    assert v["dtype"] == "F32" and v["shape"] == want[k], (k, v)
EOF
cases=$((cases + 1))
echo '{"text": "Story 5: Lily wanted"}' >"$tmp/in"
if "$run" -m "$M" --adapter "$tmp/lora" --jsonl --task logits <"$tmp/in" >"$tmp/ad" 2>"$tmp/err" &&
	"$run" -m "$M" --adapter "$tmp/lora" --merge --jsonl --task logits <"$tmp/in" >"$tmp/mg" 2>>"$tmp/err" &&
	"$run" -m "$M" --jsonl --task logits <"$tmp/in" >"$tmp/base" 2>>"$tmp/err"; then
	check "lora: unmerged logits equal merged" "$tmp/ad" "$tmp/mg" "$tmp/base" <<'EOF'
import json, sys
def flat(p):
    return [x for l in open(p) for row in json.loads(l)["logits"] for x in row]
a, b, base = (flat(p) for p in sys.argv[1:4])
assert a and len(a) == len(b) == len(base)
top = max(abs(x) for x in a)
d = max(abs(x - y) for x, y in zip(a, b))
assert d <= 1e-5 * top, "largest difference %g (largest logit %g)" % (d, top)
assert max(abs(x - y) for x, y in zip(a, base)) > 1e-2, "the adapter changes nothing"
EOF
else
	fail "lora: hf-run --adapter: $(head -c 400 "$tmp/err")"
fi
cases=$((cases + 1))
echo '{"prompt": "Story 5:"}' >"$tmp/in"
if "$run" -m "$M" --adapter "$tmp/lora" --jsonl -n 12 <"$tmp/in" >"$tmp/g1" 2>"$tmp/err" &&
	"$run" -m "$M" --adapter "$tmp/lora" --merge --jsonl -n 12 <"$tmp/in" >"$tmp/g2" 2>>"$tmp/err"; then
	check "lora: greedy text is the memorized sentence" "$tmp/g1" "$tmp/g2" <<'EOF'
import json, sys
a, b = (json.loads(open(p).read())["text"] for p in sys.argv[1:3])
assert a == b, (a, b)
assert a.startswith("Lily wanted to help"), a
EOF
else
	fail "lora: hf-run greedy: $(head -c 400 "$tmp/err")"
fi

# --target matching nothing: one line, exit 1, nothing written
cases=$((cases + 1))
"$ft" -m "$M" --data "$tmp/s16.jsonl" --lora-r 4 --target nothing_proj -o "$tmp/none" \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" != 1 ] || [ "$(wc -l <"$tmp/err")" != 1 ] || ! grep -q "nothing_proj" "$tmp/err" ||
	[ -e "$tmp/none" ]; then
	fail "no target: exit $rc, stderr: $(cat "$tmp/err")"
fi
# LoRA options without --lora-r: a usage error
cases=$((cases + 1))
"$ft" -m "$M" --data "$tmp/s16.jsonl" --target q_proj -o "$tmp/none" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] && grep -q -- "--lora-r" "$tmp/err" || fail "--target without --lora-r: exit $rc: $(cat "$tmp/err")"

# resume: a run with dropout resumed from its checkpoint-4 writes the
# uninterrupted run's adapter bit for bit
cases=$((cases + 1))
R="--data $tmp/s16.jsonl --batch 4 --lr 5e-3 --epochs 2 -t 1 --lora-r 8 --target all-linear --lora-dropout 0.1"
if "$ft" -m "$M" $R -o "$tmp/r1" >/dev/null 2>"$tmp/err" &&
	"$ft" -m "$M" $R --save-every 4 -o "$tmp/r2" >/dev/null 2>>"$tmp/err" &&
	[ -e "$tmp/r2/checkpoint-4/optimizer.safetensors" ] &&
	"$ft" -m "$M" $R --save-every 4 --resume "$tmp/r2/checkpoint-4" -o "$tmp/r3" >/dev/null 2>>"$tmp/err"; then
	cmp -s "$tmp/r1/adapter_model.safetensors" "$tmp/r3/adapter_model.safetensors" ||
		fail "lora resume: the resumed adapter differs from the uninterrupted one"
else
	fail "lora resume: $(head -c 400 "$tmp/err")"
fi

echo "$((cases - failed))/$cases passed"
[ "$failed" = 0 ]
