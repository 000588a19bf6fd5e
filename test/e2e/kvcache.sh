#!/bin/bash
# e2e: hf-run --kv-cache f32|f16|bf16|int8|q4. Every decoder fixture's
# logits through a cache of each type stay within a bound of the float32
# cache's (relative to the largest logit; the bounds are about 5x what
# the types gave when measured: f16 9e-4, bf16 8e-3, int8 2.8e-2, q4
# 0.35 on these random-weight models, which amplify every rounding);
# stories260k's perplexity on held-out text stays within a bound of the
# float32 cache's, its greedy text through f16 equals float32's, the same
# on Vulkan (lavapipe) as on the CPU; -v gives the bytes a token takes,
# as kvfmt.h's layouts say; bad types are refused.
set -u
. "$(dirname "$0")/lib.sh"
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)/models
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
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

types="f32 f16 bf16 int8 q4"
ids='{"ids":[1,5,9,33,2,7,100,4,8,12,55,3,17,21,64,6]}'

for dir in "$FX"/*/; do
	quick_skip "$dir" && continue
	m=$(basename "$dir")
	case $m in bert-* | roberta-* | distilbert-*) continue ;; esac
	hd=$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))
print(c.get("head_dim") or c.get("hidden_size", c.get("n_embd")) //
      c.get("num_attention_heads", c.get("n_head")))' "$dir/config.json")
	for t in $types; do
		cases=$((cases + 1))
		echo "$ids" | "$run" -m "$dir" --task logits --jsonl \
			--kv-cache "$t" >"$tmp/$m-$t.json" 2>"$tmp/err"
		rc=$?
		if [ "$t" = q4 ] && [ $((hd % 8)) != 0 ]; then
			# a group of q4 must be whole words: refused, one line
			if [ $rc != 1 ] || [ "$(wc -l <"$tmp/err")" != 1 ] ||
				! grep -q "multiple of 8 (it is $hd)" "$tmp/err"; then
				fail "$m --kv-cache q4, head_dim $hd: exit $rc: $(cat "$tmp/err")"
			fi
			rm -f "$tmp/$m-$t.json"
		elif [ $rc != 0 ]; then
			fail "$m --kv-cache $t: $(head -c 300 "$tmp/err")"
		fi
	done
	cases=$((cases + 1))
	python3 - "$tmp" "$m" <<-'EOF' || fail "$m: logits through typed caches"
	import json, os, sys
	tmp, m = sys.argv[1:3]
	bound = {'f16': 5e-3, 'bf16': 4e-2, 'int8': 0.15, 'q4': 1.0}
	def load(t):
	    rows = json.loads(open('%s/%s-%s.json' % (tmp, m, t)).readline())['logits']
	    return [v for r in rows for v in r]
	a = load('f32')
	mx = max(abs(v) for v in a)
	bad = 0
	for t, b in bound.items():
	    if not os.path.exists('%s/%s-%s.json' % (tmp, m, t)):
	        continue	# refused, checked above
	    x = load(t)
	    if len(x) != len(a):
	        print('%s %s: %d logits, want %d' % (m, t, len(x), len(a)))
	        bad = 1
	        continue
	    e = max(abs(p - q) for p, q in zip(a, x)) / mx
	    if e > b:
	        print('%s %s: max logit difference %.3g of the largest, bound %g' % (m, t, e, b))
	        bad = 1
	    if t != 'f32' and e == 0.0:
	        print('%s %s: logits identical to the float32 cache\'s: the type is not used' % (m, t))
	        bad = 1
	sys.exit(bad)
	EOF
done

# stories260k: perplexity on held-out text, greedy text, both devices
text=$src/scripts/bench/data/heldout-stories.txt
for dev in cpu vulkan; do
	for t in $types; do
		cases=$((cases + 1))
		if ! "$run" -m "$MODELS/stories260k" --perplexity --ctx 128 \
			--device "$dev" --kv-cache "$t" <"$text" \
			>"$tmp/ppl-$dev-$t.json" 2>"$tmp/err"; then
			fail "stories260k ppl $dev $t: $(head -c 300 "$tmp/err")"
		fi
		if ! "$run" -m "$MODELS/stories260k" -p "Once upon a time" -n 40 \
			--temperature 0 --device "$dev" --kv-cache "$t" \
			>"$tmp/gen-$dev-$t.json" 2>"$tmp/err"; then
			fail "stories260k greedy $dev $t: $(head -c 300 "$tmp/err")"
		fi
	done
done
cases=$((cases + 1))
python3 - "$tmp" <<'EOF' || fail "stories260k through typed caches"
import json, sys
tmp = sys.argv[1]
# relative perplexity increase allowed over the float32 cache's
bound = {'f32': 0.0, 'f16': 0.005, 'bf16': 0.005, 'int8': 0.01, 'q4': 0.5}
bad = 0
for dev in ('cpu', 'vulkan'):
    base = json.load(open('%s/ppl-%s-f32.json' % (tmp, dev)))['perplexity']
    for t, b in bound.items():
        p = json.load(open('%s/ppl-%s-%s.json' % (tmp, dev, t)))['perplexity']
        if abs(p / base - 1) > b:
            print('%s %s: perplexity %.4f, float32 cache %.4f, bound %g' % (dev, t, p, base, b))
            bad = 1
        c = json.load(open('%s/ppl-cpu-%s.json' % (tmp, t)))['perplexity']
        if abs(p / c - 1) > 1e-3:
            print('%s on %s: perplexity %.5f, on the CPU %.5f' % (t, dev, p, c))
            bad = 1
def ids(dev, t):
    return json.load(open('%s/gen-%s-%s.json' % (tmp, dev, t)))['ids']
for dev in ('cpu', 'vulkan'):
    if ids(dev, 'f16') != ids(dev, 'f32'):
        print('%s: greedy ids through an f16 cache differ from float32' % dev)
        bad = 1
for t in bound:
    if ids('vulkan', t) != ids('cpu', t):
        print('%s: greedy ids on Vulkan differ from the CPU' % t)
        bad = 1
sys.exit(bad)
EOF

# -v: bytes a token, from the layout (stories260k: width kv_heads *
# head_dim, groups of 32 or of a head)
for t in $types; do
	cases=$((cases + 1))
	"$run" -m "$MODELS/stories260k" -p "Once" -n 1 --kv-cache "$t" -v \
		>/dev/null 2>"$tmp/v-$t" || fail "-v $t: $(cat "$tmp/v-$t")"
done
cases=$((cases + 1))
python3 - "$tmp" "$MODELS/stories260k/config.json" <<'EOF' || fail "-v KV cache bytes"
import json, re, sys
tmp, cfg = sys.argv[1:3]
c = json.load(open(cfg))
nl, heads = c['num_hidden_layers'], c['num_attention_heads']
kvh = c.get('num_key_value_heads', heads)
d = c['hidden_size'] // heads
w = kvh * d
g = 32 if d % 32 == 0 else d
per = {'f32': 4 * w, 'f16': 2 * w, 'bf16': 2 * w,
       'int8': w // g * (4 + g), 'q4': w // g * (8 + g // 2)}
bad = 0
for t, b in per.items():
    s = open('%s/v-%s' % (tmp, t)).read()
    m = re.search(r'KV cache (\w+): (\d+) bytes a token', s)
    if not m or m.group(1) != t or int(m.group(2)) != 2 * nl * b:
        print('%s: -v says %r, want %d bytes a token' % (t, m and m.group(0), 2 * nl * b))
        bad = 1
sys.exit(bad)
EOF

# bad input: a usage error naming the type
cases=$((cases + 1))
"$run" -m "$MODELS/stories260k" -p x --kv-cache q8 >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc != 2 ] || ! grep -q "bad --kv-cache 'q8'" "$tmp/err"; then
	fail "--kv-cache q8: exit $rc: $(cat "$tmp/err")"
fi

echo "kvcache: $cases cases, $failed failed"
[ "$failed" = 0 ]
