#!/bin/bash
# e2e: what every command does alike, as a new user meets it: usage errors
# (one line, then one pointing to --help; the usage only for --help, on
# stdout), redundant flags that agree with the mode, empty input, a reader
# that goes away (| head), and Ctrl-C during generation.
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)
MODELS=$(cd "${HF_MODELS:-models}" && pwd)
M=$MODELS/stories260k
T=$FX/tokenizers
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
cases=0

fail() {
	echo "FAIL: $*" >&2
	failed=$((failed + 1))
}

# usage_error NAME PROG MESSAGE CMD...: exit 2, nothing on stdout, and on
# stderr exactly "PROG: MESSAGE" and "Try 'PROG --help' for more
# information."
usage_error() {
	local name=$1 prog=$2 msg=$3 rc
	shift 3
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	printf '%s: %s\nTry '\''%s --help'\'' for more information.\n' \
		"$prog" "$msg" "$prog" >"$tmp/want"
	if [ "$rc" != 2 ] || [ -s "$tmp/out" ] || ! cmp -s "$tmp/err" "$tmp/want"; then
		fail "$name: exit $rc, stdout $(wc -c <"$tmp/out") bytes, stderr: $(cat "$tmp/err")"
	fi
}

# 1. a bad option value, a bad option, a missing operand: every command
usage_error "run -n -1" hf-run "bad --max-tokens '-1'" "$BIN/hf-run" -m "$M" -n -1
usage_error "run --top-p 2" hf-run "bad --top-p '2'" "$BIN/hf-run" -m "$M" --top-p 2
usage_error "run via hf" hf-run "bad --top-p '2'" "$BIN/hf" run -m "$M" --top-p 2
usage_error "run unknown option" hf-run "unknown option '--frob'" "$BIN/hf-run" --frob
usage_error "run no model" hf-run "-m <model> is required" "$BIN/hf-run" -p hi
usage_error "tokenize bad number" hf-tokenize "--max-length: bad number 'x'" \
	"$BIN/hf-tokenize" -m "$T/gpt2" --max-length x
usage_error "tokenize missing value" hf-tokenize "option '--max-length' needs a value" \
	"$BIN/hf-tokenize" -m "$T/gpt2" --max-length
usage_error "inspect no operand" hf-inspect "a file or directory is required" "$BIN/hf-inspect"
usage_error "inspect bad option" hf-inspect "unknown option '-z'" "$BIN/hf-inspect" -z x
usage_error "pull -j 0" hf-pull "-j: '0' is not a number from 1 to 64" "$BIN/hf-pull" -j 0 a/b
usage_error "pull no repo" hf-pull "a repo id is required" "$BIN/hf-pull"
usage_error "hf alone" hf "a command is required: inspect pull tokenize run" "$BIN/hf"
usage_error "hf unknown command" hf "'frob' is not an hf command" "$BIN/hf" frob

# --help: the usage on stdout, nothing on stderr, exit 0
for c in hf hf-run hf-tokenize hf-inspect hf-pull; do
	cases=$((cases + 1))
	"$BIN/$c" --help >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 0 ] && [ ! -s "$tmp/err" ] && grep -q "^usage: $c " "$tmp/out" ||
		fail "$c --help: exit $rc, stdout $(head -c 100 "$tmp/out"), stderr $(cat "$tmp/err")"
done

# 2. a flag the mode implies is accepted (--chat reads JSON Lines anyway);
# two modes are a contradiction
usage_error "tokenize decode and chat" hf-tokenize "--decode and --chat exclude each other" \
	"$BIN/hf-tokenize" -m "$T/qwen3" --decode --chat
cases=$((cases + 1))
msg='{"messages": [{"role": "user", "content": "Hi"}]}'
want=$(echo "$msg" | "$BIN/hf-tokenize" -m "$T/qwen3" --chat 2>&1)
got=$(echo "$msg" | "$BIN/hf-tokenize" -m "$T/qwen3" --chat --jsonl 2>&1)
[ "$?" = 0 ] && [ "$got" = "$want" ] && [ -n "$got" ] ||
	fail "--chat --jsonl: $got, want $want"

# 3. empty input says what was empty
# expect1 NAME MESSAGE CMD...: exit 1 and stderr exactly MESSAGE
expect1() {
	local name=$1 msg=$2 rc
	shift 2
	cases=$((cases + 1))
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 1 ] && [ "$(cat "$tmp/err")" = "$msg" ] ||
		fail "$name: exit $rc, stderr: $(cat "$tmp/err"), want $msg"
}
expect1 "perplexity of nothing" "hf-run: standard input holds no text to score" \
	"$BIN/hf-run" -m "$M" --perplexity </dev/null
expect1 "perplexity of -p ''" "hf-run: the prompt (-p) holds no text to score" \
	"$BIN/hf-run" -m "$M" --perplexity -p ''
expect1 "generate from an empty line" "hf-run: record 1: empty text: nothing to generate from" \
	"$BIN/hf-run" -m "$M" -n 4 < <(echo)
expect1 "embed an empty line" "hf-run: record 1: empty text: nothing to embed" \
	"$BIN/hf-run" -m "$M" --task embed < <(echo)
expect1 "generate from -p ''" "hf-run: empty text: nothing to generate from" \
	"$BIN/hf-run" -m "$M" -p ''

# 4. | head: the reader goes away; no message, whether SIGPIPE is
# ignored by the parent or not
seq 20000 >"$tmp/lines"
for i in $(seq 300); do echo "Once upon a time"; done >"$tmp/prompts"
for ign in default ignored; do
	for c in "hf-tokenize -m $M" "hf-run -m $M -n 8"; do
		cases=$((cases + 1))
		in=$tmp/lines
		case $c in hf-run*) in=$tmp/prompts ;; esac
		python3 - "$ign" "$BIN" "$in" $c >"$tmp/res" <<'EOF'
import os, signal, subprocess, sys
ign, bindir, inp = sys.argv[1:4]
cmd = [os.path.join(bindir, sys.argv[4])] + sys.argv[5:]
pre = (lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN)) if ign == 'ignored' else None
p = subprocess.Popen(cmd, stdin=open(inp), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, preexec_fn=pre)
p.stdout.readline()
p.stdout.close()
err = p.stderr.read()
p.wait()
print(p.returncode, repr(err.decode()))
EOF
		[ "$(cat "$tmp/res")" = "-13 ''" ] ||
			fail "| head, SIGPIPE $ign, $c: want death by SIGPIPE and no message, got $(cat "$tmp/res")"
	done
done

echo "cli: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
