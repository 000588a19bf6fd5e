#!/bin/bash
# e2e: hf-finetune's training loop on stories260k (models/stories260k, the
# shipped model).
#  - over-fitting: full fine-tuning on 16 fixed sentences (as
#    prompt/completion records, so that every counted token is
#    predictable) drives the loss below 0.1; the output is a complete HF
#    model directory that hf-run loads and that continues a prompt with
#    its memorized sentence;
#  - resume: a run killed by SIGTERM at a random step (exit 143, a
#    checkpoint written) and resumed with --resume gives the losses,
#    learning rates, gradient norms and final weights of the
#    uninterrupted run bit for bit (warmup, cosine, accumulation, weight
#    decay and shuffling all in play); SIGINT exits 130;
#  - MPI: two ranks of batch 2 give the losses of one process of batch 4
#    within float rounding (skipped without mpirun);
#  - bad data and options: one line naming the file and line, exit 1 (2
#    for usage), nothing written.
# Checks are python3 over the outputs, never earlier output of ours.
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
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

# check NAME PYTHON ARGS...: a python3 check; it prints why on failure.
check() {
	local name=$1
	shift
	cases=$((cases + 1))
	python3 - "$@" >"$tmp/why" 2>&1 || fail "$name: $(head -c 600 "$tmp/why")"
}

# expect NAME RC FRAGMENT CMD...: exit status RC and FRAGMENT in stderr,
# which is one line (exit 1) or a line and the pointer to --help (exit 2).
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		return 1
	fi
	if ! grep -qF -- "$frag" "$tmp/err"; then
		fail "$name: '$frag' not in stderr: $(head -c 400 "$tmp/err")"
		return 1
	fi
	local lines=1
	[ "$want" = 2 ] && lines=2
	if [ "$(wc -l <"$tmp/err")" != "$lines" ]; then
		fail "$name: want $lines line(s) on stderr, got: $(cat "$tmp/err")"
		return 1
	fi
	return 0
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
with open(d + "/text.jsonl", "w") as f:
    for t in s:
        f.write(json.dumps({"text": t}) + "\n")
EOF

# ---- over-fitting: full fine-tuning ----
cases=$((cases + 1))
if ! "$ft" -m "$M" --data "$tmp/s16.jsonl" --batch 4 --lr 3e-3 --schedule linear \
	--epochs 40 -t 1 -o "$tmp/full" >"$tmp/full.jsonl" 2>"$tmp/err"; then
	fail "overfit: exit $?: $(cat "$tmp/err")"
fi
check "overfit: metrics, loss below 0.1" "$tmp/full.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 160, "%d steps, want 16 / 4 * 40 = 160" % len(recs)
for i, r in enumerate(recs):
    for k in ("step", "epoch", "loss", "lr", "grad_norm", "tokens_per_s"):
        assert k in r, "step %d lacks %s" % (i + 1, k)
    assert r["step"] == i + 1, r
    # linear decay to 0 over the 160 steps (a constant 3e-3 keeps
    # spiking the loss of single batches once it is near 0)
    assert abs(r["lr"] - 3e-3 * (160 - i) / 160) < 1e-12, r
assert recs[0]["loss"] > 1.0, "first loss %g: not a fresh start" % recs[0]["loss"]
assert recs[-1]["epoch"] == 40.0
last = recs[-1]["loss"]
assert last < 0.1, "last loss %g, want < 0.1" % last
EOF
check "overfit: a complete model directory" "$tmp/full" "$M" <<'EOF'
import json, os, struct, sys
out, base = sys.argv[1], sys.argv[2]
for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
          "generation_config.json"):
    assert os.path.exists(os.path.join(out, f)), "no " + f
assert not [f for f in os.listdir(out) if ".tmp" in f], os.listdir(out)
def header(p):
    b = open(p, "rb").read()
    n, = struct.unpack("<Q", b[:8])
    return json.loads(b[8:8 + n])
h, hb = header(out + "/model.safetensors"), header(base + "/model.safetensors")
names = sorted(k for k in h if k != "__metadata__")
want = sorted(k for k in hb if k != "__metadata__")
assert names == want, "tensors differ from the base: %s" % set(names).symmetric_difference(want)
for k in names:
    assert h[k]["dtype"] == "F32" and h[k]["shape"] == hb[k]["shape"], k
assert h["__metadata__"] == {"format": "pt"}, h["__metadata__"]
c = json.load(open(out + "/config.json"))
assert c == json.load(open(base + "/config.json")), "config.json changed"
EOF
cases=$((cases + 1))
echo '{"prompt": "Story 5:"}' >"$tmp/in"
if ! "$run" -m "$tmp/full" --jsonl -n 16 <"$tmp/in" >"$tmp/gen" 2>"$tmp/err"; then
	fail "overfit: hf-run on the output: $(cat "$tmp/err")"
elif ! grep -qF '"text":"Lily wanted to help the dog' "$tmp/gen"; then
	fail "overfit: hf-run does not continue with the memorized sentence: $(cat "$tmp/gen")"
fi

# ---- eval points, periodic checkpoints (the last one kept), packing ----
cases=$((cases + 1))
"$ft" -m "$M" --data "$tmp/text.jsonl" --eval "$tmp/s16.jsonl" --eval-every 4 --save-every 3 \
	--pack --seq-len 32 --batch 2 --max-steps 10 --lr 1e-3 -t 1 -o "$tmp/ev" >"$tmp/ev.jsonl" \
	2>"$tmp/err" || fail "eval: exit $?: $(cat "$tmp/err")"
check "eval: eval_loss every 4 steps and at the end; checkpoints" "$tmp/ev.jsonl" "$tmp/ev" <<'EOF'
import json, math, os, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
assert len(recs) == 10, len(recs)
ev = [r["step"] for r in recs if "eval_loss" in r]
assert ev == [4, 8, 10], "eval at steps %s" % ev
for r in recs:
    if "eval_loss" in r:
        assert r["eval_loss"] > 0 and abs(r["eval_perplexity"] - math.exp(r["eval_loss"])) < 1e-9 * r["eval_perplexity"], r
ck = sorted(d for d in os.listdir(sys.argv[2]) if d.startswith("checkpoint-"))
assert ck == ["checkpoint-9"], "checkpoints %s, want the last one, checkpoint-9" % ck
for f in ("trainer_state.json", "optimizer.safetensors", "model.safetensors", "config.json"):
    assert os.path.exists(os.path.join(sys.argv[2], "checkpoint-9", f)), f
st = json.load(open(os.path.join(sys.argv[2], "checkpoint-9", "trainer_state.json")))
assert st["step"] == 9 and st["options"]["pack"] is True and st["options"]["seq_len"] == 32, st
EOF

# ---- resume after a kill reproduces the run bit for bit ----
common=(-m "$M" --data "$tmp/text.jsonl" --batch 2 --grad-accum 2 --lr 2e-3
	--schedule cosine --warmup 0.1 --weight-decay 0.01 --seed 7 --max-steps 160 -t 1)
cases=$((cases + 1))
"$ft" "${common[@]}" -o "$tmp/a" >"$tmp/a.jsonl" 2>"$tmp/err" ||
	fail "resume: the uninterrupted run: exit $?: $(cat "$tmp/err")"
# killed SIG K OUT ARGS...: hf-finetune ARGS -o OUT, sent SIG once it has
# printed K metrics lines; its lines go to OUT.jsonl; sets rc.
killed() {
	local sig=$1 k=$2 out=$3 n=0 pid line
	shift 3
	rm -f "$tmp/fifo"
	mkfifo "$tmp/fifo"
	"$ft" "$@" -o "$out" >"$tmp/fifo" 2>"$out.err" &
	pid=$!
	while IFS= read -r line; do
		echo "$line" >>"$out.jsonl"
		n=$((n + 1))
		[ "$n" = "$k" ] && kill "-$sig" "$pid"
	done <"$tmp/fifo"
	wait "$pid"
	rc=$?
}
k=$((RANDOM % 100 + 10))
cases=$((cases + 1))
killed TERM "$k" "$tmp/b" "${common[@]}"
if [ "$rc" != 143 ]; then
	fail "resume: killed at step $k: exit $rc, want 143: $(cat "$tmp/b.err")"
elif ! grep -q -- "--resume" "$tmp/b.err"; then
	fail "resume: no word of the checkpoint on stderr: $(cat "$tmp/b.err")"
fi
[ ! -e "$tmp/b/model.safetensors" ] || fail "resume: the killed run wrote a final model"
cases=$((cases + 1))
"$ft" "${common[@]}" --resume "$tmp/b" -o "$tmp/b" >>"$tmp/b.jsonl" 2>"$tmp/err" ||
	fail "resume: the resumed run: exit $?: $(cat "$tmp/err")"
check "resume: losses bit for bit (killed at step $k)" "$tmp/a.jsonl" "$tmp/b.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == 160, len(a)
assert [r["step"] for r in b] == list(range(1, 161)), "steps %s" % [r["step"] for r in b]
for x, y in zip(a, b):
    for k in ("loss", "lr", "grad_norm", "epoch"):
        assert x[k] == y[k], "step %d %s: %r uninterrupted, %r resumed" % (x["step"], k, x[k], y[k])
assert a[0]["lr"] == 0.0 and a[16]["lr"] == 2e-3, "warmup of 16 steps: %r %r" % (a[0]["lr"], a[16]["lr"])
EOF
cases=$((cases + 1))
cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors" ||
	fail "resume: the final weights differ from the uninterrupted run's"

cases=$((cases + 1))
killed INT 3 "$tmp/c" "${common[@]}"
[ "$rc" = 130 ] || fail "sigint: exit $rc, want 130: $(cat "$tmp/c.err")"
ls -d "$tmp"/c/checkpoint-* >/dev/null 2>&1 || fail "sigint: no checkpoint written"

# ---- two MPI ranks equal one process with the same global batch ----
if command -v mpirun >/dev/null 2>&1; then
	mp=(-m "$M" --data "$tmp/text.jsonl" --lr 2e-3 --schedule linear --seed 3 --max-steps 12 -t 1)
	cases=$((cases + 1))
	"$ft" "${mp[@]}" --batch 4 -o "$tmp/one" >"$tmp/one.jsonl" 2>"$tmp/err" ||
		fail "mpi: one process: $(cat "$tmp/err")"
	# one machine: shared memory between the ranks (btl self,vader), as
	# Open MPI picks there anyway
	# under ASan, Open MPI's own leaks are suppressed (test/lsan.supp);
	# its plugins need the slow unwinder for their frames to be named
	if ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:fast_unwind_on_malloc=0} \
		mpirun -np 2 --allow-run-as-root --oversubscribe --mca btl self,vader \
		"$ft" "${mp[@]}" --batch 2 \
		-o "$tmp/two" >"$tmp/two.jsonl" 2>"$tmp/err"; then
		check "mpi: 2 ranks of batch 2 = 1 of batch 4" "$tmp/one.jsonl" "$tmp/two.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == 12 and len(b) == 12, "%d and %d metrics lines (rank 0 alone writes)" % (len(a), len(b))
for x, y in zip(a, b):
    # float32 sums of two halves in another order: 1e-5 relative
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), "step %d %s: %r vs %r" % (x["step"], k, x[k], y[k])
    assert x["lr"] == y["lr"]
EOF
		[ -e "$tmp/two/model.safetensors" ] || fail "mpi: rank 0 wrote no model"
		# across machines Open MPI's TCP transport calls bind(2): a
		# function of that name in hf would be called instead
		nm -D "$BIN/hf" 2>/dev/null | grep -qw bind &&
			echo "WARNING: hf exports a symbol 'bind' that shadows bind(2): mpirun over TCP crashes" >&2
	else
		fail "mpi: mpirun -np 2: $(head -c 600 "$tmp/err")"
	fi
else
	echo "SKIP: mpi: mpirun not installed" >&2
fi

# ---- bad data and options ----
printf '{"text": "a"}\n{"text": \n' >"$tmp/bad.jsonl"
expect "bad JSON" 1 "bad.jsonl:2: bad JSON" "$ft" -m "$M" --data "$tmp/bad.jsonl" -o "$tmp/x"
: >"$tmp/empty.jsonl"
expect "empty file" 1 "empty.jsonl: no records" "$ft" -m "$M" --data "$tmp/empty.jsonl" -o "$tmp/x"
printf '{"text": "a"}\n{"txt": "a"}\n' >"$tmp/keys.jsonl"
expect "unknown keys" 1 "keys.jsonl:2: record has none of the known keys" \
	"$ft" -m "$M" --data "$tmp/keys.jsonl" -o "$tmp/x"
expect "too long" 1 "text.jsonl:1: sample of" \
	"$ft" -m "$M" --data "$tmp/text.jsonl" --seq-len 4 -o "$tmp/x"
printf '{"messages": [{"role": "user", "content": "hi"}]}\n' >"$tmp/chat.jsonl"
expect "chat without a template" 1 "chat.jsonl:1:" "$ft" -m "$M" --data "$tmp/chat.jsonl" -o "$tmp/x"
[ ! -e "$tmp/x" ] || fail "bad data: an output directory was made"
if [ -d "$FX/llama-tiny" ]; then
	echo '{"ids": [1, 5, 6, 7]}' >"$tmp/ids.jsonl"
	expect "resume from another model" 1 "is of another model" \
		"$ft" -m "$FX/llama-tiny" --data "$tmp/ids.jsonl" --resume "$tmp/b" -o "$tmp/y"
fi
expect "resume without a checkpoint" 1 "holds no checkpoint" \
	"$ft" -m "$M" --data "$tmp/text.jsonl" --resume "$tmp" -o "$tmp/y"
expect "resume with other options" 1 "was made with batch 2" \
	"$ft" "${common[@]}" --batch 4 --resume "$tmp/b" -o "$tmp/y"
expect "no output" 2 "-o <dir>" "$ft" -m "$M" --data "$tmp/text.jsonl"
expect "bad schedule" 2 "unknown schedule 'wavy'" "$ft" -m "$M" --data "$tmp/text.jsonl" \
	--schedule wavy -o "$tmp/x"
expect "bad warmup" 2 "warmup '1.5'" "$ft" -m "$M" --data "$tmp/text.jsonl" --warmup 1.5 -o "$tmp/x"
expect "bad lr" 2 "--lr 'x'" "$ft" -m "$M" --data "$tmp/text.jsonl" --lr x -o "$tmp/x"

echo "finetune: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
