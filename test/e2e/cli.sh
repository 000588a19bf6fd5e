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
usage_error "quantize no model" hf-quantize "-m <model> is required" "$BIN/hf-quantize" --method int8 -o x
usage_error "hf alone" hf "a command is required: inspect pull tokenize run quantize finetune export" "$BIN/hf"
usage_error "hf unknown command" hf "'frob' is not an hf command" "$BIN/hf" frob

# '-' with a terminal on stdin: a binary file never comes from one
cases=$((cases + 1))
out=$(script -qec "'$BIN/hf-inspect' - 2>&1; echo rc=\$?" /dev/null | tr -d '\r')
[ "$out" = "$(printf '%s\n%s\n%s' "hf-inspect: '-' reads a safetensors file from standard input, which is a terminal" \
	"Try 'hf-inspect --help' for more information." "rc=2")" ] ||
	fail "inspect - on a terminal: $out"

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
usage_error "perplexity with a task" hf-run "--perplexity scores plain text: not with --task" \
	"$BIN/hf-run" -m "$M" --perplexity --task embed
usage_error "perplexity of records" hf-run "--perplexity scores plain text: not with --jsonl" \
	"$BIN/hf-run" -m "$M" --perplexity --jsonl
usage_error "normalize a generation" hf-run "--normalize is for --task embed" \
	"$BIN/hf-run" -m "$M" --normalize
usage_error "stride without perplexity" hf-run "--stride is for --perplexity" \
	"$BIN/hf-run" -m "$M" --stride 4
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

# 5. Ctrl-C while generating: death by SIGINT (a shell sees 130), no
# message; complete records are out and whole; on a terminal the streamed
# text stays and ends its line. In a chat, Ctrl-C ends the reply only.
mkdir -p "$tmp/chat"
cp "$M"/* "$tmp/chat/"
python3 - "$tmp/chat/tokenizer_config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
json.dump(c, open(sys.argv[1], "w"))
EOF
for i in $(seq 400); do echo "Once upon a time"; done >"$tmp/many"
cases=$((cases + 3))
python3 - "$BIN/hf-run" "$M" "$tmp/many" "$tmp/chat" <<'EOF' || failed=$((failed + 1))
import json, os, pty, select, signal, subprocess, sys, time
run, model, many, chat = sys.argv[1:5]
dfl = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
bad = 0
def fail(msg):
    global bad
    print('FAIL: Ctrl-C: ' + msg, file=sys.stderr)
    bad = 1

# a pipe: some whole records, then death by SIGINT
p = subprocess.Popen([run, '-m', model, '-n', '400', '--temperature', '0.8'],
                     stdin=open(many), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, preexec_fn=dfl)
first = p.stdout.readline()	# generation is under way
p.send_signal(signal.SIGINT)
out, err = p.communicate(timeout=60)
recs = [json.loads(l) for l in (first + out).splitlines()]
if p.returncode != -signal.SIGINT or err or not recs or len(recs) == 400:
    fail('pipe: status %s, %d records, stderr %r' % (p.returncode, len(recs), err))

def pty_run(argv, keys, wait_for):
    """Run argv on a terminal; type keys after wait_for shows up, SIGINT
    once the output grows past that; returns (status, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        dfl()
        os.execv(argv[0], argv)
    buf, sent, since, t0 = b'', 0, 0, time.time()
    while time.time() - t0 < 60:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            buf += d
        if sent < len(keys) and wait_for[sent] in buf[since:]:
            k = keys[sent]
            sent += 1
            since = len(buf)
            if k == 'INT':
                mark = len(buf)
                while len(buf) < mark + 40 and time.time() - t0 < 60:
                    r, _, _ = select.select([fd], [], [], 0.1)
                    if r:
                        buf += os.read(fd, 65536)
                os.kill(pid, signal.SIGINT)
                since = len(buf)
            else:
                os.write(fd, k)
    for _ in range(50):
        wp, st = os.waitpid(pid, os.WNOHANG)
        if wp:
            return st, buf
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)	# still going: a failure
    return os.waitpid(pid, 0)[1], buf

# a terminal: the story so far, a newline, death by SIGINT
st, buf = pty_run([run, '-m', model, '-n', '20000', '--temperature', '0.8',
                   '-p', 'Once upon a time'], ['INT'], [b'Once'])
if not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGINT) or \
   not buf.endswith(b'\r\n') or len(buf) < 40:
    fail('terminal: status %#x, output ends %r' % (st, buf[-40:]))

# a chat: Ctrl-C ends the reply and the prompt comes back; /exit quits
st, buf = pty_run([run, '-m', chat, '--chat', '-n', '20000',
                   '--temperature', '0.8'],
                  [b'Once upon a time\r', 'INT', b'/exit\r'],
                  [b'> ', b'Once upon a time\r', b'\r\n\r\x1b[K> '])
if not (os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0) or b'/exit' not in buf:
    fail('chat: status %#x, output %r' % (st, buf[-200:]))
sys.exit(bad)
EOF

echo "cli: $cases cases, $failed failed" >&2
[ "$failed" = 0 ]
