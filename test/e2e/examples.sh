#!/bin/bash
# e2e: the EXAMPLES of every man page and the ```sh blocks of README, taken
# from the files and run as they are written (roff escapes undone), so an
# example that stops working, or a page that drifts, fails here. Each must
# exit 0 with something on stdout and nothing on stderr. Not run: what
# needs root, minutes or the Hub (./scripts/*, hf-pull: pull.sh runs the
# hf-pull page's examples against its own local Hub). README's build/tools/
# is the build under test.
set -u
BIN=$(cd "${HF_BIN:-build/tools}" && pwd)
FX=$(cd "${HF_FIXTURES:-test/fixtures}" && pwd)
src=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export PATH="$BIN:$PATH" HF_HUB_OFFLINE=1 HF_PROGRESS=0
failed=0
ran=0
skipped=0

# Working directories like the source tree's top, where examples may
# write their outputs: top for README (which says to run them there),
# work for the man pages, with the text file hf-run(1)'s example reads.
top=$tmp/top
work=$tmp/work
mkdir -p "$top" "$work"
ln -s "$src/models" "$top/models"
ln -s "$src/models" "$work/models"
printf 'Once upon a time, there was a little girl named Lily. She liked to play\noutside with her ball. One day, she saw a big dog in the park.\n' \
	>"$work/story.txt"

# Each example as four NUL-ended fields: where it is, the directory to run
# it in, the command, and why it is not run (empty: it is).
python3 - "$src" "$FX/tokenizers" "$work" "$top" "$BIN" >"$tmp/examples" <<'EOF'
import glob, os, re, sys
src, tokdir, work, top, bindir = sys.argv[1:6]
def out(where, cwd, cmd):
    # steps joined by && that need root or minutes go; the rest run
    steps = [s for s in cmd.split(' && ') if not s.startswith('./scripts/')]
    run = ' && '.join(steps).replace('build/tools/', bindir + '/')
    why = ('root or minutes' if not steps else
           'the Hub; pull.sh runs hf-pull on its own' if 'hf-pull' in run else '')
    sys.stdout.write('%s\0%s\0%s\0%s\0' % (where, cwd, run or cmd, why))
def unroff(text):
    for a, b in (('\\-', '-'), ('\\(aq', "'"), ('\\(dq', '"'), ('\\&', ''),
                 ('\\e', '\\')):
        text = text.replace(a, b)
    return text
for page in sorted(glob.glob(os.path.join(src, 'man', '*.1'))):
    text = open(page, encoding='utf-8').read()
    ex = text[text.index('.SH EXAMPLES'):]
    # hf-tokenize's page says its examples run among the fixtures
    cwd = tokdir if 'test/fixtures/tokenizers' in ex.split('.EX')[0] else work
    for n, block in enumerate(re.findall(r'^\.EX\n(.*?)^\.EE$', ex, re.M | re.S)):
        out('%s example %d' % (os.path.basename(page), n + 1), cwd,
            unroff(block).strip())
readme = open(os.path.join(src, 'README'), encoding='utf-8').read()
for n, block in enumerate(re.findall(r'^```sh\n(.*?)^```$', readme, re.M | re.S)):
    for k, line in enumerate(block.strip().split('\n')):
        out('README block %d line %d' % (n + 1, k + 1), top, line)
EOF

while IFS= read -r -d '' where && IFS= read -r -d '' cwd &&
      IFS= read -r -d '' cmd && IFS= read -r -d '' why; do
	if [ -n "$why" ]; then
		echo "skip ($why): $where: $cmd" >&2
		skipped=$((skipped + 1))
		continue
	fi
	ran=$((ran + 1))
	(cd "$cwd" && bash -e -o pipefail -c "$cmd") >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	if [ "$rc" != 0 ] || [ ! -s "$tmp/out" ] || [ -s "$tmp/err" ]; then
		echo "FAIL: $where: exit $rc, $(wc -c <"$tmp/out") bytes out: $cmd" >&2
		head -c 600 "$tmp/err" >&2
		failed=$((failed + 1))
	fi
done <"$tmp/examples"

# every page has examples, and most of them run here
[ "$ran" -ge 15 ] || { echo "FAIL: only $ran examples ran" >&2; failed=$((failed + 1)); }
echo "examples: $ran run, $skipped skipped, $failed failed" >&2
[ "$failed" = 0 ]
