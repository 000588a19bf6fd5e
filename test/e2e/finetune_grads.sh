#!/bin/bash
# e2e: hf-finetune --grads on every Llama-style model fixture against the
# references made with transformers (reference.json's train record and
# reference_grads.safetensors): the reference batch (input_ids, labels)
# as JSON Lines in, the loss within 1e-5 relative, every norm of
# train.grad_norms within 1e-4 relative, every tensor of
# reference_grads.safetensors within 1e-4 relative L2, and the printed
# grad_norm equal to the norm of the file written. Then the same with
# --checkpointing, on every ISA path of the matrix products, and bad
# input: one clear line naming the file and line, a non-zero exit,
# nothing written. Checks are python3 over the files (the fixtures'
# tolerances: README.md there, float32 against float64 is 1e-6 at most).
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
ft=$BIN/hf-finetune
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
cases=0
models="llama-tiny llama-tiny-untied mistral-tiny mixtral-tiny qwen2-tiny qwen3-tiny gemma-tiny phi3-tiny"
# the LayerNorm families (train_gpt2.c, train_encoder.c: masked-LM loss)
models="$models gpt2-tiny bert-tiny roberta-tiny distilbert-tiny"

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# The reference batch of model $1 as JSON Lines.
batch() {
	python3 - "$FX/$1/reference.json" <<-'EOF'
	import json, sys
	t = json.load(open(sys.argv[1]))['train']
	for ids, lab in zip(t['input_ids'], t['labels']):
	    print(json.dumps({'ids': ids, 'labels': lab}))
	EOF
}

# compare MODEL OUT GRADS: the printed record OUT and the gradient file
# GRADS against the references of MODEL.
compare() {
	python3 - "$FX/$1" "$2" "$3" <<-'EOF'
	import json, math, os, struct, sys
	fx, out, grads = sys.argv[1:4]

	def load(path):
	    b = open(path, 'rb').read()
	    n = struct.unpack('<Q', b[:8])[0]
	    h = json.loads(b[8:8 + n])
	    h.pop('__metadata__', None)
	    t = {}
	    for k, v in h.items():
	        assert v['dtype'] == 'F32', (path, k, v['dtype'])
	        s, e = v['data_offsets']
	        t[k] = (v['shape'], struct.unpack('<%df' % ((e - s) // 4),
	                                          b[8 + n + s:8 + n + e]))
	    return t

	def norm(x):
	    return math.sqrt(sum(v * v for v in x))

	ref = json.load(open(os.path.join(fx, 'reference.json')))['train']
	got = json.loads(open(out).read())
	g = load(grads)
	bad = []
	rel = abs(got['loss'] - ref['loss']) / abs(ref['loss'])
	if rel > 1e-5:
	    bad.append('loss %r, want %r (rel %.2g)' % (got['loss'], ref['loss'], rel))
	for k, want in ref['grad_norms'].items():
	    if k not in g:
	        bad.append('no gradient %s in the file' % k)
	        continue
	    n = norm(g[k][1])
	    if abs(n - want) / want > 1e-4:
	        bad.append('|grad %s| %r, want %r' % (k, n, want))
	total = math.sqrt(sum(sum(v * v for v in x) for _, x in g.values()))
	if abs(total - got['grad_norm']) / total > 1e-5:
	    bad.append('grad_norm %r, the file says %r' % (got['grad_norm'], total))
	rg = os.path.join(fx, 'reference_grads.safetensors')
	if os.path.exists(rg):
	    for k, (shape, want) in load(rg).items():
	        if k not in g:
	            bad.append('no gradient %s in the file' % k)
	            continue
	        if g[k][0] != shape:
	            bad.append('%s has shape %s, want %s' % (k, g[k][0], shape))
	            continue
	        d = norm([a - b for a, b in zip(g[k][1], want)]) / norm(want)
	        if d > 1e-4:
	            i = max(range(len(want)), key=lambda i: abs(g[k][1][i] - want[i]))
	            bad.append('%s: rel L2 %.3g; [%d] got %r want %r' %
	                       (k, d, i, g[k][1][i], want[i]))
	# a tied head is the embedding: no lm_head.weight of its own
	cfg = json.load(open(os.path.join(fx, 'config.json')))
	if cfg.get('tie_word_embeddings', True) and 'lm_head.weight' in g:
	    bad.append('a tied model has an lm_head.weight gradient')
	for b in bad:
	    print(b)
	sys.exit(1 if bad else 0)
	EOF
}

# run NAME MODEL ARGS...: --grads on MODEL's reference batch, compared.
run() {
	local name=$1 model=$2
	shift 2
	cases=$((cases + 1))
	rm -f "$tmp/g.safetensors"
	# the reference batch's rows: 2 (decoders), 1 (encoders)
	if ! "$ft" -m "$FX/$model" --data "$tmp/$model.jsonl" \
		--batch "$(wc -l <"$tmp/$model.jsonl")" \
		--grads "$tmp/g.safetensors" "$@" >"$tmp/out" 2>"$tmp/err"; then
		fail "$name: exit $?: $(head -c 400 "$tmp/err")"
		return
	fi
	[ -s "$tmp/err" ] && fail "$name: stderr: $(head -c 400 "$tmp/err")"
	compare "$model" "$tmp/out" "$tmp/g.safetensors" >"$tmp/why" 2>&1 ||
		fail "$name: $(head -c 1500 "$tmp/why")"
}

for model in $models; do
	batch "$model" >"$tmp/$model.jsonl"
	run "$model" "$model"
	run "$model --checkpointing" "$model" --checkpointing
done

# every ISA path of the products (one model with each structure: GQA,
# fused projections, experts); HF_CPU naming a set this CPU lacks runs
# the best it has (test/unit/train/ops.c forces each and skips those)
for isa in generic avx2 avx512; do
	for model in llama-tiny phi3-tiny mixtral-tiny bert-tiny; do
		HF_CPU=$isa run "$model on $isa" "$model"
	done
done

# expect NAME RC FRAGMENT ARGS...: exit status RC, FRAGMENT in the one
# line of stderr (exit 1) or the first of two (usage, exit 2), and no
# gradient file left behind.
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	rm -f "$tmp/bad.safetensors"
	"$ft" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		return
	fi
	grep -qF -- "$frag" "$tmp/err" ||
		fail "$name: '$frag' not in stderr: $(head -c 400 "$tmp/err")"
	local lines=1
	[ "$want" = 2 ] && lines=2
	[ "$(wc -l <"$tmp/err")" = "$lines" ] ||
		fail "$name: want $lines line(s) on stderr, got: $(cat "$tmp/err")"
	[ -s "$tmp/out" ] && fail "$name: stdout: $(head -c 200 "$tmp/out")"
	ls "$tmp" | grep -q '^bad\.safetensors' &&
		fail "$name: a gradient file was left behind"
}

m=$FX/llama-tiny
d=$tmp/bad.jsonl
g=$tmp/bad.safetensors
printf '{"ids": [1, 2, 3]}\n{"ids": [1, 2\n' >"$d"
expect "malformed JSON" 1 "$d:2: malformed JSON" -m "$m" --data "$d" --batch 2 --grads "$g"
printf '{"ids": [1, 2, 3]}\n\n{"ids": [4, 5]}\n' >"$d"
expect "unequal lengths" 1 "$d:3: 2 ids, the first record has 3" -m "$m" --data "$d" --batch 2 --grads "$g"
printf '{"text": "hello"}\n' >"$d"
expect "no ids" 1 "$d:1: want a record" -m "$m" --data "$d" --grads "$g"
printf '{"ids": [1, 2, 3], "labels": [1, 2]}\n' >"$d"
expect "labels of another length" 1 "$d:1: 2 labels for 3 ids" -m "$m" --data "$d" --grads "$g"
printf '{"ids": [1, "x"]}\n' >"$d"
expect "an id not an integer" 1 "$d:1: 'ids'[1] is not an integer" -m "$m" --data "$d" --grads "$g"
: >"$d"
expect "empty file" 1 "$d: no records" -m "$m" --data "$d" --grads "$g"
printf '{"ids": [1, 2, 3]}\n' >"$d"
expect "too few records" 1 "$d: 1 record, --batch 2 needs 2" -m "$m" --data "$d" --batch 2 --grads "$g"
printf '{"ids": [1, 2, 9999]}\n' >"$d"
expect "id outside the vocabulary" 1 "token id 9999 (row 0, position 2)" -m "$m" --data "$d" --grads "$g"
printf '{"ids": [1, 2, 3], "labels": [1, 2, 600]}\n' >"$d"
expect "label outside the vocabulary" 1 "label 600 (row 0, position 2)" -m "$m" --data "$d" --grads "$g"
printf '{"ids": [1, 2, 3], "labels": [1, -100, -100]}\n' >"$d"
expect "nothing to learn" 1 "no label to learn from" -m "$m" --data "$d" --grads "$g"
expect "missing data file" 1 "$tmp/none.jsonl" -m "$m" --data "$tmp/none.jsonl" --grads "$g"
printf '{"ids": [1, 2, 3]}\n' >"$d"
expect "neither -o nor --grads" 2 "(or --grads <file>) is required" -m "$m" --data "$d"
expect "no --data" 2 "--data <file.jsonl> is required" -m "$m" --grads "$g"
expect "bad --batch" 2 "--batch '0'" -m "$m" --data "$d" --batch 0 --grads "$g"
expect "unknown option" 2 "--frobnicate" -m "$m" --data "$d" --grads "$g" --frobnicate

echo "finetune_grads: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
