#!/bin/bash
# e2e: hf-tokenize through pipes on the tokenizer fixtures: exact outputs,
# agreement with the goldens (read by python3, not by us), the man page
# examples, and every bad input with its exit status and message.
set -u
BIN=${HF_BIN:-build/tools}
FX=${HF_FIXTURES:-test/fixtures}
src=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "$BIN" && pwd)
FX=$(cd "$FX" && pwd)
tok=$BIN/hf-tokenize
T=$FX/tokenizers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# expect NAME RC WANT CMD...: exit status RC; for RC 0 stdout must equal
# WANT exactly (when WANT is not "-"), else stderr must contain WANT and
# be one line.
expect() {
	local name=$1 want=$2 frag=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		fail "$name: exit $rc, want $want; stderr: $(head -c 400 "$tmp/err")"
		return
	fi
	if [ "$want" = 0 ]; then
		if [ "$frag" != "-" ] && [ "$(cat "$tmp/out")" != "$frag" ]; then
			fail "$name: stdout $(head -c 400 "$tmp/out"), want $frag"
		fi
	else
		if ! grep -qF -- "$frag" "$tmp/err"; then
			fail "$name: '$frag' not in stderr: $(head -c 400 "$tmp/err")"
		fi
		if [ "$want" = 1 ] && [ "$(wc -l <"$tmp/err")" != 1 ]; then
			fail "$name: want one line on stderr, got: $(cat "$tmp/err")"
		fi
	fi
}

# sh CMD: run a pipeline in the fixtures directory (so -m gpt2 works)
sh_() {
	(cd "$T" && PATH="$BIN:$PATH" bash -c "$1")
}

# 1. exact outputs
expect "encode gpt2" 0 \
	'{"ids":[15496,995],"tokens":["Hello","Ġworld"],"offsets":[[0,5],[5,11]]}' \
	sh_ 'echo "Hello world" | hf-tokenize -m gpt2'
expect "ids-only bert" 0 '[101,7592,2088,102]' \
	sh_ 'echo "Hello world" | hf-tokenize -m bert-base-uncased --ids-only'
expect "no-special bert" 0 '[7592,2088]' \
	sh_ 'echo "Hello world" | hf-tokenize -m bert-base-uncased --ids-only --no-special'
expect "count" 0 "$(printf '3\n5')" \
	sh_ 'printf "Hello world\nHello world, again\n" | hf-tokenize -m llama3_1 --count'
expect "empty line" 0 '{"ids":[],"tokens":[],"offsets":[]}' \
	sh_ 'echo | hf-tokenize -m gpt2'
expect "pair jsonl" 0 \
	'{"ids":[101,2003,2009,1029,102,2748,1012,102],"tokens":["[CLS]","is","it","?","[SEP]","yes",".","[SEP]"],"offsets":[[0,0],[0,2],[3,5],[5,6],[0,0],[0,3],[3,4],[0,0]],"type_ids":[0,0,0,0,0,1,1,1]}' \
	sh_ "echo '{\"text\": \"Is it?\", \"text_pair\": \"Yes.\"}' | hf-tokenize -m bert-base-uncased --jsonl"
expect "decode" 0 '{"text":"Hello world"}' \
	sh_ 'echo "[15496, 995]" | hf-tokenize -m gpt2 --decode'
expect "decode jsonl skip-special" 0 '{"text":"Hello"}' \
	sh_ 'echo "{\"ids\": [128000, 9906]}" | hf-tokenize -m llama3_1 --decode --jsonl --skip-special'
expect "decode keeps special" 0 '{"text":"<|begin_of_text|>Hello"}' \
	sh_ 'echo "{\"ids\": [128000, 9906]}" | hf-tokenize -m llama3_1 --decode --jsonl'
expect "escape" 0 '{"text":"a\"b\\c\nd\u0001"}' \
	sh_ "echo '{\"text\": \"a\\\"b\\\\c\\nd\\u0001\"}' | hf-tokenize -m gpt2 --jsonl --ids-only | hf-tokenize -m gpt2 --decode"
expect "truncate" 0 '[101,1037,1038,102]' \
	sh_ 'echo "a b c d e" | hf-tokenize -m bert-base-uncased --ids-only --truncate --max-length 4'
expect "stride windows" 0 '{"ids":[101,1037,1038,1039,102],"tokens":["[CLS]","a","b","c","[SEP]"],"offsets":[[0,0],[0,1],[2,3],[4,5],[0,0]],"overflowing":[{"ids":[101,1039,1040,102],"tokens":["[CLS]","c","d","[SEP]"],"offsets":[[0,0],[4,5],[6,7],[0,0]]}]}' \
	sh_ 'echo "a b c d" | hf-tokenize -m bert-base-uncased --truncate --max-length 5 --stride 1'
expect "stride too big" 1 "truncation stride 3 must be less than 3" \
	sh_ 'echo "a b c d" | hf-tokenize -m bert-base-uncased --truncate --max-length 5 --stride 3'
expect "pad to max-length" 0 "$(printf '[101,1037,1038,102,0,0]\n[101,1037,1038,1039,1040,102]')" \
	sh_ 'printf "a b\na b c d\n" | hf-tokenize -m bert-base-uncased --ids-only --pad --max-length 6'
expect "pad longest" 0 "$(printf '[64,151643,151643]\n[64,293,272]\n[64]')" \
	sh_ 'printf "a\na b c\na\n" | hf-tokenize -m qwen3 --ids-only --pad --batch-size 2'
expect "truncate to model_max_length, pad to longest" 0 "$(printf '[64,151643,151643]\n[64,293,272]')" \
	sh_ 'printf "a\na b c\n" | hf-tokenize -m qwen3 --ids-only --truncate --pad'
expect "lossy" 0 '[397,4210,66]' \
	sh_ 'printf "ab\xffc\n" | hf-tokenize -m gpt2 --ids-only --lossy'
expect "multi-call" 0 '[5303]' "$BIN/hf" tokenize -m "$T/gpt2" --ids-only < <(echo hi)
expect "full disk" 1 "cannot write to standard output" \
	sh_ 'echo hi | hf-tokenize -m gpt2 >/dev/full'
expect "help" 0 - "$tok" -h
grep -q '^usage: hf-tokenize' "$tmp/out" || fail "help: no usage on stdout"

# 2. agreement with the goldens, through the pipe, for every tokenizer
for d in "$T"/*/; do
	name=$(basename "$d")
	[ -f "$d/golden.jsonl" ] || continue
	cases=$((cases + 1))
	python3 - "$d/golden.jsonl" "$tmp/in.jsonl" "$tmp/want" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
lines = [r for r in lines if r['add_special_tokens']]
with open(sys.argv[2], 'w', encoding='utf-8') as f, open(sys.argv[3], 'w') as w:
    for r in lines:
        f.write(json.dumps({'text': r['text']}, ensure_ascii=False) + '\n')
        w.write(json.dumps({'ids': r['ids'], 'tokens': r['tokens'],
                            'offsets': r['offsets']}, ensure_ascii=False,
                           separators=(',', ':')) + '\n')
EOF
	"$tok" -m "$d" --jsonl --threads 2 <"$tmp/in.jsonl" >"$tmp/got" 2>"$tmp/err" ||
		{ fail "golden $name: exit $?: $(head -c 300 "$tmp/err")"; continue; }
	python3 - "$tmp/got" "$tmp/want" "$name" <<'EOF' || fail "golden $name: records differ"
import json, sys
got = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
want = [json.loads(l) for l in open(sys.argv[2], encoding='utf-8')]
bad = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
if len(got) != len(want) or bad:
    print("%s: %d records, want %d; first differing: %s" % (
        sys.argv[3], len(got), len(want), bad[:5]), file=sys.stderr)
    sys.exit(1)
EOF
done

# 3. threads give the same output as one thread
cases=$((cases + 1))
python3 -c "
import json, sys
for l in open('$T/corpus.jsonl', encoding='utf-8'):
    print(json.dumps({'text': json.loads(l)['text']}, ensure_ascii=False))
" >"$tmp/corpus.jsonl"
"$tok" -m "$T/llama3_1" --jsonl --threads 1 <"$tmp/corpus.jsonl" >"$tmp/t1"
"$tok" -m "$T/llama3_1" --jsonl --threads 2 <"$tmp/corpus.jsonl" >"$tmp/t2"
cmp -s "$tmp/t1" "$tmp/t2" || fail "threads: --threads 2 differs from --threads 1"

# 4. chat templates: renders equal the goldens
for f in "$FX"/chat_templates/*.jsonl; do
	name=$(basename "$f" .jsonl)
	[ -f "$T/$name/tokenizer_config.json" ] || continue
	cases=$((cases + 1))
	python3 - "$f" "$tmp/chat.in" "$tmp/chat.want" <<'EOF'
import json, sys
with open(sys.argv[2], 'w', encoding='utf-8') as i, open(sys.argv[3], 'w', encoding='utf-8') as w:
    for l in open(sys.argv[1], encoding='utf-8'):
        r = json.loads(l)
        if 'rendered' not in r:
            continue
        rec = {'messages': r['messages'], 'add_generation_prompt': r['add_generation_prompt']}
        if 'tools' in r:
            rec['tools'] = r['tools']
        rec.update(r.get('kwargs', {}))
        i.write(json.dumps(rec, ensure_ascii=False) + '\n')
        w.write(json.dumps({'text': r['rendered']}, ensure_ascii=False) + '\n')
EOF
	"$tok" -m "$T/$name" --chat <"$tmp/chat.in" >"$tmp/chat.got" 2>"$tmp/err" ||
		{ fail "chat $name: exit $?: $(head -c 300 "$tmp/err")"; continue; }
	python3 - "$tmp/chat.got" "$tmp/chat.want" <<'EOF' || fail "chat $name: renders differ"
import json, sys
g = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')]
w = [json.loads(l) for l in open(sys.argv[2], encoding='utf-8')]
sys.exit(0 if g == w else 1)
EOF
done
expect "chat ids" 0 '{"ids":[151644,872,198,13048,151645,198,151644,77091,198]}' \
	sh_ "echo '{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}' | hf-tokenize -m qwen3 --chat --add-generation-prompt --ids"

# 5. the EXAMPLES of man/hf-tokenize.1, as written there
man_has() {
	sed -e 's/\\-/-/g' -e "s/\\\\(aq/'/g" -e 's/\\en/\\n/g' -e 's/^\.EX$//' \
		"$src/man/hf-tokenize.1" | grep -qF -- "$1" ||
		fail "man example not in man/hf-tokenize.1: $1"
}
ex1='echo "Hello world" | hf-tokenize -m gpt2'
ex2="printf 'Hello world\nHello world, again\n' | hf-tokenize -m llama3_1 --count"
ex3="echo '{\"text\": \"Is it?\", \"text_pair\": \"Yes.\"}' | hf-tokenize -m bert-base-uncased --jsonl --ids-only"
ex4="echo '[15496, 995]' | hf-tokenize -m gpt2 --decode"
ex5="printf 'a b\na b c d\n' | hf-tokenize -m bert-base-uncased --pad --max-length 6 --ids-only"
ex6="echo '{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}]}' | hf-tokenize -m qwen3 --chat --add-generation-prompt"
for ex in "$ex1" "$ex2" "$ex3" "$ex4" "$ex5" "$ex6"; do
	man_has "$ex"
done
expect "man example 1" 0 - sh_ "$ex1"
expect "man example 2" 0 "$(printf '3\n5')" sh_ "$ex2"
expect "man example 3" 0 '[101,2003,2009,1029,102,2748,1012,102]' sh_ "$ex3"
expect "man example 4" 0 '{"text":"Hello world"}' sh_ "$ex4"
expect "man example 5" 0 "$(printf '[101,1037,1038,102,0,0]\n[101,1037,1038,1039,1040,102]')" sh_ "$ex5"
expect "man example 6" 0 '{"text":"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"}' sh_ "$ex6"

# 6. bad input: exit status and a message naming the culprit
expect "invalid utf-8" 1 "stdin line 2: invalid UTF-8 at byte 2" \
	sh_ 'printf "ok\nab\xffc\nnot reached\n" | hf-tokenize -m gpt2 --ids-only'
[ "$(cat "$tmp/out")" = "[482]" ] ||
	fail "invalid utf-8: the line before should be written, got: $(cat "$tmp/out")"
expect "invalid utf-8 in jsonl" 1 "stdin line 1: invalid UTF-8 at byte 11" \
	sh_ 'printf "{\"text\": \"a\xff\"}\n" | hf-tokenize -m gpt2 --jsonl'
expect "lossy jsonl" 0 '[64,4210]' \
	sh_ 'printf "{\"text\": \"a\xff\"}\n" | hf-tokenize -m gpt2 --jsonl --lossy --ids-only'
expect "bad json" 1 "stdin line 2: bad JSON" \
	sh_ 'printf "{\"text\": \"a\"}\n{\"text\": \n" | hf-tokenize -m gpt2 --jsonl'
expect "jsonl without text" 1 "stdin line 1: want {\"text\"" \
	sh_ 'echo "{\"txt\": 1}" | hf-tokenize -m gpt2 --jsonl'
expect "decode bad id" 1 "stdin line 1: id out of range at index 1" \
	sh_ 'echo "[1, 99999999]" | hf-tokenize -m gpt2 --decode'
expect "decode not an array" 1 "stdin line 1: want an array of ids" \
	sh_ 'echo "{}" | hf-tokenize -m gpt2 --decode'
expect "too long" 1 "stdin line 1: 4 tokens, more than --max-length 3" \
	sh_ 'echo "a b" | hf-tokenize -m bert-base-uncased --max-length 3'
expect "no pad token" 1 "no pad token" \
	sh_ 'echo a | hf-tokenize -m gpt2 --pad'
expect "no chat template" 1 "no chat template" \
	sh_ 'echo "{\"messages\": []}" | hf-tokenize -m gpt2 --chat'
expect "no such template" 1 "no chat template named 'nope'" \
	sh_ 'echo "{\"messages\": []}" | hf-tokenize -m qwen3 --chat --template nope'
expect "template raises" 1 "stdin line 1:" \
	sh_ 'echo "{\"messages\": [{\"role\": \"assistant\", \"content\": null}]}" | hf-tokenize -m qwen3 --chat'
expect "missing model" 1 "no such model directory" "$tok" -m "$tmp/nope"
expect "no tokenizer.json" 1 "tokenizer.json: no such file" "$tok" -m "$tmp"
expect "no -m" 2 "-m <model> is required" "$tok"
expect "unknown option" 2 "unknown option '--frobnicate'" "$tok" -m "$T/gpt2" --frobnicate
expect "missing value" 2 "option '--max-length' needs a value" "$tok" -m "$T/gpt2" --max-length
expect "flag given a value" 2 "option '--jsonl' takes no value" "$tok" -m "$T/gpt2" --jsonl=1
expect "bad number" 2 "--max-length: bad number 'x'" "$tok" -m "$T/gpt2" --max-length x
expect "count and ids-only" 2 "exclude each other" "$tok" -m "$T/gpt2" --count --ids-only
expect "truncate without limit" 2 "--truncate needs --max-length" \
	sh_ 'echo a | hf-tokenize -m gpt2 --truncate'

# malformed tokenizer.json: unknown types and broken JSON name the path
mkdir -p "$tmp/m"
python3 - "$T/bert-base-uncased/tokenizer.json" "$tmp/m" <<'EOF'
import json, os, sys
t = json.load(open(sys.argv[1], encoding='utf-8'))
def save(name, obj):
    d = os.path.join(sys.argv[2], name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'tokenizer.json'), 'w', encoding='utf-8') as f:
        json.dump(obj, f, ensure_ascii=False)
m = json.loads(json.dumps(t)); m['model']['type'] = 'Foo'; save('model', m)
m = json.loads(json.dumps(t)); m['normalizer'] = {'type': 'Sequence', 'normalizers': [{'type': 'NFC'}, {'type': 'Bar'}]}; save('norm', m)
m = json.loads(json.dumps(t)); m['pre_tokenizer'] = {'type': 'Split', 'pattern': {'Regex': '(['}, 'behavior': 'Isolated'}; save('regex', m)
m = json.loads(json.dumps(t)); m['decoder'] = {'type': 'Strip', 'content': 'ab'}; save('decoder', m)
m = json.loads(json.dumps(t)); m['added_tokens'][1]['id'] = 'x'; save('added', m)
d = os.path.join(sys.argv[2], 'trunc'); os.makedirs(d, exist_ok=True)
open(os.path.join(d, 'tokenizer.json'), 'w').write(json.dumps(t)[:5000])
EOF
expect "unknown model" 1 "tokenizer.json: model.type: unknown model 'Foo'" \
	"$tok" -m "$tmp/m/model"
expect "unknown normalizer" 1 "tokenizer.json: normalizer.normalizers[1].type: unknown normalizer 'Bar'" \
	"$tok" -m "$tmp/m/norm"
expect "bad regex" 1 "tokenizer.json: pre_tokenizer.pattern: bad regex" \
	"$tok" -m "$tmp/m/regex"
expect "bad decoder field" 1 "tokenizer.json: decoder: key 'content' must be one character" \
	"$tok" -m "$tmp/m/decoder"
expect "bad added token" 1 "tokenizer.json: added_tokens[1]: key 'id' must be an integer" \
	"$tok" -m "$tmp/m/added"
expect "truncated json" 1 "tokenizer.json" "$tok" -m "$tmp/m/trunc"

echo "tokenize: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
