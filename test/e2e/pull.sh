#!/bin/bash
# test/e2e/pull.sh: hf-pull against test/hub/server.py on 127.0.0.1: the
# cache layout huggingface_hub writes, revisions, selection, errors, and
# downloads that survive drops, stalls, 5xx, 429, corruption, kills and a
# concurrent twin. Exits non-zero if any check fails.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
fixtures=${HF_FIXTURES:-$root/test/fixtures}
bin=${HF_BIN:-$root/build/tools}
pull="$bin/hf-pull"
ctl="python3 $root/test/hub/ctl.py"
work=$(mktemp -d "${TMPDIR:-/tmp}/hf-pull-e2e.XXXXXX")
spid=
fails=0

cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

python3 "$root/test/hub/server.py" --fixtures "$fixtures" \
	--port-file "$work/port" --big-mib 4 &
spid=$!
for _ in $(seq 100); do
	[ -s "$work/port" ] && break
	sleep 0.1
done
[ -s "$work/port" ] || { echo "server did not start"; exit 1; }
read -r port cdnport < "$work/port"

unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_OFFLINE \
	TRANSFORMERS_OFFLINE HUGGINGFACE_HUB_CACHE XDG_CACHE_HOME \
	HF_HUB_DISABLE_IMPLICIT_TOKEN
export HF_ENDPOINT="http://127.0.0.1:$port"
export HF_HOME="$work/home"
export HF_HUB_CACHE="$HF_HOME/hub"
export HF_HUB_RETRIES=5
export HF_PROGRESS=0
cache=$HF_HUB_CACHE

ok() { echo "ok - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }
# check NAME GOT WANT
check() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: got '$2', want '$3'"; fi
}
# contains NAME FILE TEXT
contains() {
	if grep -qF -- "$3" "$2"; then ok "$1"
	else fail "$1: '$3' not in: $(cat "$2")"; fi
}
ctl_set() { $ctl "$port" set "$1"; }
reset() { ctl_set '{"reset": true, "faults": [], "throttle": 0}'; }
commit() { $ctl commit "$1"; }
git_sha1() { git hash-object --no-filters "$1"; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
# no_debris NAME DIR: nothing half-done left in DIR
no_debris() {
	local d
	d=$(find "$2" \( -name '*.incomplete' -o -name '*.tmp.*' \) 2>/dev/null)
	check "$1: no partial files" "$d" ""
}
# blobs_verified NAME REPO_DIR: each blob's name is its content's hash
blobs_verified() {
	local b name bad=
	for b in "$2"/blobs/*; do
		name=${b##*/}
		case ${#name} in
		64) [ "$(sha256 "$b")" = "$name" ] || bad="$bad $name" ;;
		40) [ "$(git_sha1 "$b")" = "$name" ] || bad="$bad $name" ;;
		*) bad="$bad $name" ;;
		esac
	done
	check "$1: every blob matches its name" "$bad" ""
}

gpt2=$(commit tiny/gpt2@v2)
gpt2_v1=$(commit tiny/gpt2@v1)
repo=$cache/models--tiny--gpt2
snap=$repo/snapshots/$gpt2
fx=$fixtures/models/gpt2-tiny

# --- the cache layout ---------------------------------------------------
reset
out=$("$pull" tiny/gpt2 2>"$work/err")
check "default pull exits 0" "$?" 0
check "stdout is the snapshot dir alone" "$out" "$snap"
check "refs/main holds the commit, no newline" "$(cat "$repo/refs/main")" "$gpt2"
check "refs/main is 40 bytes" "$(wc -c < "$repo/refs/main")" 40
check "default selection" "$(cd "$snap" && find . ! -type d | sort | tr '\n' ' ')" \
	"./config.json ./docs/sub/notes.txt ./generation_config.json ./model.safetensors ./tokenizer.json ./tokenizer_config.json "
st_sha=$(sha256 "$fx/model.safetensors")
check "LFS file links to blobs/<sha256>" "$(readlink "$snap/model.safetensors")" \
	"../../blobs/$st_sha"
check "git file links to blobs/<git blob sha1>" "$(readlink "$snap/config.json")" \
	"../../blobs/$(git_sha1 "$fx/config.json")"
check "nested file link climbs one more per level" \
	"$(readlink "$snap/docs/sub/notes.txt")" \
	"../../../../blobs/$(printf 'nested file\n' | git hash-object --stdin)"
cmp -s "$snap/model.safetensors" "$fx/model.safetensors" &&
	cmp -s "$snap/config.json" "$fx/config.json" &&
	cmp -s "$snap/tokenizer.json" "$fixtures/tokenizers/gpt2/tokenizer.json" &&
	ok "snapshot files have the served bytes" || fail "snapshot content differs"
check "one blob per file" "$(ls "$repo/blobs" | wc -l)" 6
check "lock files under .locks/<folder>/<etag>.lock" \
	"$(ls "$cache/.locks/models--tiny--gpt2/" | grep -c '\.lock$')" 6
check "the repo folder holds blobs, refs, snapshots" "$(ls "$repo" | tr '\n' ' ')" \
	"blobs refs snapshots "
blobs_verified "gpt2" "$repo"
no_debris "gpt2" "$cache"
check "LFS bodies came from the CDN" \
	"$($ctl "$port" requests /cdn/ | grep -c "^GET /cdn/$st_sha")" 1
check "HEAD per file at the commit" \
	"$($ctl "$port" requests "/resolve/$gpt2/" | grep -c '^HEAD')" 6

# --- the progress bar -----------------------------------------------------
# on a terminal (script(1) makes one its stderr) one bar for all the files,
# with bytes, rate and time, ending the line; stdout is still the snapshot
# alone. Off a terminal, and with --quiet, no bar.
bar() {	# bar CACHE ARGS...: pull onto a terminal; its screen in $work/screen
	local c=$1
	shift
	env -u HF_PROGRESS HF_HUB_CACHE="$c" script -qec \
		"'$pull' $* >'$work/bar-out'" /dev/null > "$work/screen"
}
reset
bar "$work/bar1" tiny/gpt2
check "bar: pull exits 0" "$?" 0
check "bar: stdout is the snapshot dir alone" "$(cat "$work/bar-out")" \
	"$work/bar1/models--tiny--gpt2/snapshots/$gpt2"
contains "bar: drawn on the terminal" "$work/screen" "Fetching 6 files ["
contains "bar: ends full, with the time taken" "$work/screen" "] 100% "
grep -qE '[0-9.]+ [kMG]?B/[0-9.]+ [kMG]?B [0-9.]+ [kMG]?B/s in [0-9.]+s' \
	"$work/screen" && ok "bar: bytes, total, rate and time" ||
	fail "bar: no bytes, rate and time in: $(cat -v "$work/screen")"
bar "$work/bar2" tiny/gpt2 --quiet
check "bar: --quiet draws none" "$(grep -c Fetching "$work/screen")" 0
env -u HF_PROGRESS HF_HUB_CACHE="$work/bar3" "$pull" tiny/gpt2 \
	>/dev/null 2>"$work/err"
check "bar: none off a terminal" "$(cat "$work/err")" ""

# nothing moves the second time: one API call, no HEAD, no body
reset
out=$("$pull" tiny/gpt2)
check "second pull prints the same dir" "$out" "$snap"
check "second pull makes one request" "$($ctl "$port" requests | wc -l)" 1

# a Python-written cache entry is used as is: replace a blob's content
# check by pointing at a pre-existing blob; hf must not fetch it again
reset
"$pull" tiny/gpt2 README.md >/dev/null
check "an explicit file is fetched" "$(readlink "$snap/README.md")" \
	"../../blobs/$(printf '# tiny gpt2\n' | git hash-object --stdin)"
check "only that file was fetched" \
	"$($ctl "$port" requests /resolve/ | grep -c '^GET')" 1

# a renamed repo: the API and HEAD redirect; the cache keeps the asked name
out=$("$pull" tiny/old-gpt2 config.json 2>"$work/err")
check "renamed repo: the old name's folder" "$out" \
	"$cache/models--tiny--old-gpt2/snapshots/$gpt2"
check "renamed repo: same blob" "$(readlink "$out/config.json")" \
	"../../blobs/$(git_sha1 "$fx/config.json")"

# --- -m org/name in the other commands -----------------------------------
# hf-run, hf-tokenize and hf-inspect resolve a Hub id through the cache
# hf-pull filled (offline: no request may reach the server), and give
# what they give for the snapshot directory itself.
reset
echo '{"ids": [5, 6, 7]}' > "$work/ids.jsonl"
want=$("$bin/hf-run" -m "$snap" --jsonl --task logits < "$work/ids.jsonl")
got=$(HF_HUB_OFFLINE=1 "$bin/hf-run" -m tiny/gpt2 --jsonl --task logits \
	< "$work/ids.jsonl" 2>"$work/err")
check "hf-run -m org/name exits 0" "$?" 0
[ -n "$want" ] && [ "$got" = "$want" ] &&
	ok "hf-run -m org/name gives the snapshot's logits" ||
	fail "hf-run -m org/name: $(head -c 200 "$work/err")"
want=$(echo "hello world" | "$bin/hf-tokenize" -m "$snap")
got=$(echo "hello world" | HF_HUB_OFFLINE=1 "$bin/hf-tokenize" -m tiny/gpt2)
[ -n "$want" ] && [ "$got" = "$want" ] &&
	ok "hf-tokenize -m org/name encodes as the snapshot" ||
	fail "hf-tokenize -m org/name: got '$got', want '$want'"
HF_HUB_OFFLINE=1 "$bin/hf-inspect" tiny/gpt2 > "$work/out" 2>"$work/err"
check "hf-inspect org/name exits 0" "$?" 0
contains "hf-inspect org/name reads the snapshot" "$work/out" "GPT2LMHeadModel"
check "hf-inspect org/name names the snapshot" "$(head -1 "$work/out")" \
	"model         $snap"
check "offline -m reached no server" "$($ctl "$port" requests | wc -l)" 0
HF_HUB_OFFLINE=1 "$bin/hf-run" -m tiny/ptonly -p x >/dev/null 2>"$work/err"
check "hf-run -m uncached org/name offline exits 1" "$?" 1
contains "offline -m names the repo" "$work/err" "tiny/ptonly"
"$bin/hf-run" -m no-such-dir -p x >/dev/null 2>"$work/err"
check "a bare missing name stays a path" "$?" 1
check "a bare name asks no server" "$($ctl "$port" requests | wc -l)" 0

# --- revisions --------------------------------------------------------
reset
out=$("$pull" tiny/gpt2@v1.0)
check "a tag resolves to its commit" "$out" "$repo/snapshots/$gpt2_v1"
check "refs/v1.0" "$(cat "$repo/refs/v1.0")" "$gpt2_v1"
check "a blob shared by two commits is stored once" \
	"$(readlink "$repo/snapshots/$gpt2_v1/model.safetensors")" "../../blobs/$st_sha"
check "shared blob not downloaded again" "$($ctl "$port" bytes /cdn/)" 0
out=$("$pull" tiny/gpt2 --revision refs/pr/1)
check "--revision refs/pr/1" "$out" "$repo/snapshots/$gpt2_v1"
check "refs/refs/pr/1 nests directories" "$(cat "$repo/refs/refs/pr/1")" "$gpt2_v1"
check "the API got the revision percent-encoded" \
	"$($ctl "$port" requests /api/ | grep -c 'revision/refs/pr/1')" 1
rm -rf "$repo"
out=$("$pull" "tiny/gpt2@$gpt2" config.json)
check "a commit revision" "$out" "$snap"
check "no ref is written for a commit" "$(ls "$repo/refs" 2>/dev/null)" ""
"$pull" tiny/gpt2 --dry-run >"$work/dry"
check "--dry-run marks what is cached" "$(cut -f2,3 "$work/dry" | grep cached | tr '\t\n' ': ')" \
	"cached:config.json "
"$pull" tiny/gpt2 >/dev/null && "$pull" tiny/gpt2@v1.0 >/dev/null
"$pull" tiny/gpt2@v9 2>"$work/err" >/dev/null
check "unknown revision exits 1" "$?" 1
contains "unknown revision message" "$work/err" \
	"hf-pull: revision 'v9' not found in 'tiny/gpt2'"
"$pull" tiny/gpt2 --revision v1.0 tiny@v2 2>/dev/null >/dev/null
check "an extra positional file that is absent fails" "$?" 1
"$pull" tiny/gpt2@v1.0 --revision main 2>"$work/err" >/dev/null
check "@rev and --revision disagreeing is a usage error" "$?" 2

# --- selection ----------------------------------------------------------
reset
"$pull" tiny/gpt2 --dry-run >"$work/dry" 2>"$work/err"
check "--dry-run exits 0" "$?" 0
contains "--dry-run lists sizes" "$work/dry" "$(printf '632240\tcached\tmodel.safetensors')"
rm -rf "$cache/models--tiny--ptonly"
"$pull" tiny/ptonly --dry-run >"$work/dry"
check "--dry-run without safetensors takes .bin, not .h5" \
	"$(cut -f2,3 "$work/dry" | tr '\t\n' ': ')" "fetch:config.json fetch:pytorch_model.bin "
check "--dry-run writes nothing" "$(ls "$cache" | grep -c ptonly)" 0
check "--dry-run downloads nothing" "$($ctl "$port" requests /resolve/ | wc -l)" 0
"$pull" tiny/gpt2 --include '*.json' --exclude 'tokenizer*' --dry-run >"$work/dry"
check "--include and --exclude" "$(cut -f3 "$work/dry" | tr '\n' ' ')" \
	"config.json generation_config.json "
"$pull" tiny/gpt2 --include 'onnx/' --dry-run >"$work/dry"
check "a pattern ending in / takes the folder" "$(cut -f3 "$work/dry")" "onnx/model.onnx"
out=$("$pull" tiny/sharded -j 3)
check "sharded checkpoint" "$(ls "$out" | tr '\n' ' ')" \
	"config.json model-00001-of-00003.safetensors model-00002-of-00003.safetensors model-00003-of-00003.safetensors model.safetensors.index.json "
blobs_verified "sharded" "$cache/models--tiny--sharded"

out=$("$pull" --repo-type dataset tiny/data)
check "dataset folder and snapshot" "$out" \
	"$cache/datasets--tiny--data/snapshots/$(commit tiny/data@v1)"
cmp -s "$out/data/train.jsonl" "$fixtures/tokenizers/corpus.jsonl" &&
	ok "dataset file content" || fail "dataset file content"
check "dataset resolve URLs carry datasets/" \
	"$($ctl "$port" requests /datasets/tiny/data/resolve/ | grep -c HEAD)" 2

# --- errors -------------------------------------------------------------
"$pull" 2>"$work/err" >/dev/null
check "no repo is a usage error" "$?" 2
"$pull" tiny/gpt2 -j 0 2>/dev/null
check "-j 0 is a usage error" "$?" 2
# option errors name the option, after the command's name alone
"$pull" tiny/gpt2 --bogus=1 2>"$work/err"
check "unknown option exits 2" "$?" 2
check "unknown option named" "$(head -1 "$work/err")" \
	"hf-pull: unknown option '--bogus'"
"$pull" tiny/gpt2 --revision 2>"$work/err"
check "missing value exits 2" "$?" 2
check "missing value named" "$(head -1 "$work/err")" \
	"hf-pull: option '--revision' needs a value"
"$pull" tiny/gpt2 -qj 2>"$work/err"
check "missing value of a short option named" "$(head -1 "$work/err")" \
	"hf-pull: option '-j' needs a value"
"$pull" tiny/gpt2 --quiet=yes 2>"$work/err"
check "a value for a flag refused" "$(head -1 "$work/err")" \
	"hf-pull: option '--quiet' takes no value"
"$pull" tiny/nope >"$work/out" 2>"$work/err"
check "missing repo exits 1" "$?" 1
check "missing repo prints nothing on stdout" "$(cat "$work/out")" ""
contains "missing repo message" "$work/err" \
	"hf-pull: repository 'tiny/nope' not found, or private and no token was given (set HF_TOKEN)"
"$pull" tiny/gpt2 nope.bin 2>"$work/err" >/dev/null
check "missing file exits 1" "$?" 1
contains "missing file message" "$work/err" \
	"hf-pull: file 'nope.bin' not found in 'tiny/gpt2' at revision 'main'"
"$pull" tiny/private 2>"$work/err" >/dev/null
contains "private repo without token" "$work/err" \
	"repository 'tiny/private' not found, or private and no token was given"
HF_TOKEN=hf_wrong "$pull" tiny/private 2>"$work/err" >/dev/null
contains "a bad token" "$work/err" \
	"invalid token (401 from 127.0.0.1:$port): Invalid credentials in Authorization header"
reset
out=$(HF_TOKEN=hf_test_token "$pull" tiny/private)
check "private repo with HF_TOKEN" "$?" 0
blobs_verified "private" "$cache/models--tiny--private"
check "the token never goes to the CDN" "$($ctl "$port" cdn-auth)" 0
check "the token goes to the Hub" \
	"$($ctl "$port" requests /resolve/ | grep -c ' auth$')" 3
rm -rf "$cache/models--tiny--private"
mkdir -p "$HF_HOME" && printf 'hf_test_token\r\n' > "$HF_HOME/token"
"$pull" tiny/private >/dev/null 2>"$work/err"
check "token file under HF_HOME" "$?" 0
rm -f "$HF_HOME/token"
"$pull" tiny/gated 2>"$work/err" >/dev/null
check "gated repo exits 1" "$?" 1
contains "gated repo, no token: the server's message" "$work/err" \
	"hf-pull: 'tiny/gated' is gated (401): Access to model tiny/gated is restricted. You must have access to it and be authenticated to access it. Please log in."
HF_TOKEN=hf_test_token "$pull" tiny/gated 2>"$work/err" >/dev/null
contains "gated repo, terms not accepted" "$work/err" \
	"'tiny/gated' is gated (403): Access to model tiny/gated is restricted and you are not in the authorized list."
"$pull" --token hf_gated_ok tiny/gated >/dev/null 2>"$work/err"
check "gated repo with access (--token)" "$?" 0

reset
ctl_set '{"faults": [{"kind": "status", "code": 429, "retry_after": 1, "match": "/api/", "count": 1}]}'
t0=$(date +%s.%N)
"$pull" tiny/ptonly --dry-run >/dev/null 2>"$work/err"
check "one 429 is retried" "$?" 0
t1=$(date +%s.%N)
check "Retry-After is honoured" "$(python3 -c "print($t1 - $t0 >= 1.0)")" True
ctl_set '{"faults": [{"kind": "status", "code": 429, "retry_after": 1, "match": "/api/", "count": 50}]}'
HF_HUB_RETRIES=1 "$pull" tiny/ptonly >/dev/null 2>"$work/err"
check "rate limited exits 1" "$?" 1
contains "rate limited message" "$work/err" \
	"hf-pull: rate limited by 127.0.0.1:$port (429) (after 2 attempts); it asks to wait 1 s"

reset
HF_HUB_OFFLINE=1 "$pull" tiny/big >/dev/null 2>"$work/err"
check "offline with nothing cached exits 1" "$?" 1
contains "offline with nothing cached message" "$work/err" \
	"hf-pull: offline (HF_HUB_OFFLINE is set) and model 'tiny/big' at revision 'main' is not in the cache '$cache'"
out=$(HF_HUB_OFFLINE=1 "$pull" tiny/gpt2)
check "offline answers from refs/main" "$out" "$snap"
out=$("$pull" --offline tiny/gpt2@v1.0)
check "offline tag" "$out" "$repo/snapshots/$gpt2_v1"
check "offline makes no request" "$($ctl "$port" requests | wc -l)" 0
HF_HUB_OFFLINE=yes "$pull" tiny/gpt2 pytorch_model.bin 2>"$work/err" >/dev/null
contains "offline with a file not cached" "$work/err" \
	"file 'pytorch_model.bin' not found in 'tiny/gpt2' at revision 'main' of the cache"
out=$(HF_ENDPOINT=http://127.0.0.1:1 timeout 5 "$pull" tiny/gpt2 2>"$work/err")
check "Hub unreachable: the cached snapshot" "$out" "$snap"
contains "Hub unreachable: a warning" "$work/err" "using the cached snapshot"
HF_ENDPOINT=http://127.0.0.1:1 HF_HUB_RETRIES=0 "$pull" tiny/big 2>"$work/err" >/dev/null
check "Hub unreachable, nothing cached, exits 1" "$?" 1
contains "Hub unreachable message" "$work/err" "cannot reach 127.0.0.1:1"
HF_ENDPOINT="http://127.0.0.1:$cdnport" "$pull" tiny/gpt2 tokenizer.json \
	2>"$work/err" >/dev/null
check "a server that is not the Hub" "$?" 1

# disk full: the partial blob is /dev/full
big=$cache/models--tiny--big
mkdir -p "$big/blobs"
"$pull" tiny/big --dry-run >"$work/dry"
big_size=$(grep model.safetensors "$work/dry" | cut -f1)
check "big file size" "$big_size" 4194304
big_sha=$(python3 -c "
import json, urllib.request
i = json.load(urllib.request.urlopen('$HF_ENDPOINT/api/models/tiny/big?blobs=true'))
print([s['lfs']['sha256'] for s in i['siblings'] if 'lfs' in s][0])")
ln -s /dev/full "$big/blobs/$big_sha.incomplete"
"$pull" tiny/big 2>"$work/err" >/dev/null
check "disk full exits 1" "$?" 1
contains "disk full message" "$work/err" \
	"hf-pull: disk full writing '$big/blobs/$big_sha.incomplete'"
check "disk full leaves no blob" "$(ls "$big/blobs" | grep -c "^$big_sha\$")" 0
rm -f "$big/blobs/$big_sha.incomplete"
# a real full disk, where a private mount namespace is allowed (root): a
# 2 MiB tmpfs cannot hold the 4 MiB file, and that shows before any byte
if unshare -m true 2>/dev/null; then
	small=$work/small
	mkdir -p "$small"
	reset
	unshare -m bash -c 'mount -t tmpfs -o size=2m tmpfs "$1" &&
		HF_HUB_CACHE="$1" exec "$2" tiny/big' _ "$small" "$pull" \
		2>"$work/err" >/dev/null
	check "small disk exits 1" "$?" 1
	contains "small disk message" "$work/err" \
		"hf-pull: disk full: '$small/models--tiny--big/blobs/$big_sha.incomplete' needs 4194304 more bytes"
	check "small disk: found before the transfer" "$($ctl "$port" bytes /cdn/)" 0
else
	echo "skip - small disk: no private mount namespace here"
fi

# --- faults on the 4 MiB file --------------------------------------------
cdn_big=/cdn/$big_sha
fresh() { rm -rf "$big" "$cache/.locks/models--tiny--big"; reset; }

fresh
ctl_set '{"faults": [{"kind": "drop", "match": "/cdn/", "at": 1048576, "count": 1}]}'
"$pull" tiny/big >/dev/null 2>"$work/err"
check "dropped connection: complete" "$?" 0
check "dropped connection: only missing bytes sent again" \
	"$($ctl "$port" bytes "$cdn_big")" "$big_size"
check "dropped connection: resumed with Range" \
	"$($ctl "$port" requests "$cdn_big" | cut -d' ' -f3 | tr '\n' ' ')" "- bytes=1048576- "
blobs_verified "drop" "$big"
no_debris "drop" "$big"

fresh
ctl_set '{"faults": [{"kind": "drop", "match": "/cdn/", "at": 1048576, "count": 1},
	{"kind": "norange", "match": "/cdn/", "count": 1}]}'
"$pull" tiny/big >/dev/null 2>"$work/err"
check "Range ignored after a drop: complete" "$?" 0
check "Range ignored after a drop: whole body taken from 0" \
	"$($ctl "$port" bytes "$cdn_big")" "$((big_size + 1048576))"
blobs_verified "norange" "$big"

fresh
ctl_set '{"faults": [{"kind": "status", "code": 500, "match": "/cdn/", "count": 2}]}'
"$pull" tiny/big >/dev/null 2>"$work/err"
check "two 500s: complete" "$?" 0
blobs_verified "500" "$big"

fresh
ctl_set '{"faults": [{"kind": "status", "code": 503, "match": "/cdn/", "count": 99}]}'
HF_HUB_RETRIES=2 "$pull" tiny/big >/dev/null 2>"$work/err"
check "persistent 503 exits 1" "$?" 1
contains "persistent 503 message" "$work/err" \
	"hf-pull: server error 503 from 127.0.0.1:$cdnport (after 3 attempts): injected 503"
check "persistent 503: no blob" "$(ls "$big/blobs" | grep -c "^$big_sha\$")" 0

fresh
ctl_set '{"faults": [{"kind": "stall", "match": "/cdn/", "at": 1048576, "seconds": 20, "count": 1}]}'
HF_HUB_DOWNLOAD_TIMEOUT=1 "$pull" tiny/big >/dev/null 2>"$work/err"
check "stalled transfer: complete" "$?" 0
check "stalled transfer: only missing bytes sent again" \
	"$($ctl "$port" bytes "$cdn_big")" "$big_size"
blobs_verified "stall" "$big"

fresh
ctl_set '{"faults": [{"kind": "corrupt", "match": "/cdn/", "at": 3000000, "count": 1}]}'
"$pull" tiny/big >/dev/null 2>"$work/err"
check "corrupt body once: complete after a fresh download" "$?" 0
contains "corrupt body once: warned" "$work/err" "expected $big_sha; downloading it again"
blobs_verified "corrupt once" "$big"

fresh
ctl_set '{"faults": [{"kind": "corrupt", "match": "/cdn/", "at": 10, "count": 99}]}'
"$pull" tiny/big >/dev/null 2>"$work/err"
check "corrupt body always exits 1" "$?" 1
contains "sha mismatch message" "$work/err" "'model.safetensors': sha256 of the download is"
check "corrupt body: no blob, no partial" "$(ls "$big/blobs" 2>/dev/null | grep -c "$big_sha")" 0

# the same with the hash inline (the default on one CPU; above, on a thread)
fresh
ctl_set '{"faults": [{"kind": "drop", "match": "/cdn/", "at": 1048576, "count": 1},
	{"kind": "norange", "match": "/cdn/", "count": 1}]}'
HF_HUB_HASH_THREAD=0 "$pull" tiny/big >/dev/null 2>"$work/err"
check "inline hash: drop, then Range ignored: complete" "$?" 0
check "inline hash: drop, then Range ignored: bytes" \
	"$($ctl "$port" bytes "$cdn_big")" "$((big_size + 1048576))"
blobs_verified "inline hash restart" "$big"
fresh
ctl_set '{"faults": [{"kind": "drop", "match": "/cdn/", "at": 1048576, "count": 1},
	{"kind": "corrupt", "match": "/cdn/", "at": 1000000, "count": 1}]}'
HF_HUB_HASH_THREAD=0 "$pull" tiny/big >/dev/null 2>"$work/err"
check "inline hash: drop, then a corrupt resume: complete" "$?" 0
contains "inline hash: the corruption was seen" "$work/err" "expected $big_sha"
check "inline hash: drop + corrupt resume + fresh copy: bytes" \
	"$($ctl "$port" bytes "$cdn_big")" "$((2 * big_size))"
blobs_verified "inline hash corrupt" "$big"
no_debris "inline hash" "$big"
fresh
ctl_set '{"faults": [{"kind": "corrupt", "match": "/cdn/", "at": 10, "count": 99}]}'
HF_HUB_HASH_THREAD=0 "$pull" tiny/big >/dev/null 2>"$work/err"
check "inline hash: corrupt always exits 1" "$?" 1
contains "inline hash: sha mismatch message" "$work/err" "'model.safetensors': sha256 of the download is"

# blobs of 1 MiB and up written with O_DIRECT (HF_HUB_DIRECT_IO=1; the
# file system of the test may not take them, then the page cache does):
# a plain pull, a drop at an aligned offset (direct writes go on) and at an
# odd one (the rest goes through the page cache), inline hash and thread
direct_ok=0
dd if=/dev/zero of="$cache/.odirect" bs=4096 count=1 oflag=direct \
	2>/dev/null && direct_ok=1
rm -f "$cache/.odirect"
for hash in 0 1; do
	for at in none 1048576 1000001; do
		fresh
		[ "$at" = none ] ||
			ctl_set "{\"faults\": [{\"kind\": \"drop\", \"match\": \"/cdn/\", \"at\": $at, \"count\": 1}]}"
		HF_LOG=debug HF_HUB_DIRECT_IO=1 HF_HUB_HASH_THREAD=$hash \
			"$pull" tiny/big >/dev/null 2>"$work/err"
		check "direct I/O, hash thread $hash, drop at $at: complete" "$?" 0
		check "direct I/O, hash thread $hash, drop at $at: bytes" \
			"$($ctl "$port" bytes "$cdn_big")" "$big_size"
		[ "$at" = none ] && [ "$direct_ok" = 1 ] &&
			check "direct I/O, hash thread $hash: used" \
				"$(grep -c "$big_size bytes in .*, direct I/O" "$work/err")" 1
		blobs_verified "direct I/O $hash $at" "$big"
		no_debris "direct I/O $hash $at" "$big"
	done
done
# and the default leaves a 4 MiB blob to the page cache
fresh
HF_LOG=debug "$pull" tiny/big >/dev/null 2>"$work/err"
check "4 MiB blob: complete" "$?" 0
check "4 MiB blob: no direct I/O under the 64 MiB default" \
	"$(grep -c 'direct I/O' "$work/err")" 0

# killed mid-way, then resumed by the next run, hashing inline and on a
# thread (the resumed run hashes the partial file first)
for resume_thread in 0 1; do
	fresh
	ctl_set '{"throttle": 2000000}'
	"$pull" tiny/big >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 200); do
		have=$(stat -c %s "$big/blobs/$big_sha.incomplete" 2>/dev/null || echo 0)
		[ "$have" -ge 1000000 ] && break
		sleep 0.05
	done
	kill -9 "$pid"
	wait "$pid" 2>/dev/null
	have=$(stat -c %s "$big/blobs/$big_sha.incomplete")
	check "hash thread $resume_thread: killed: no blob under its final name" "$(ls "$big/blobs" | grep -c "^$big_sha\$")" 0
	[ "$have" -gt 0 ] && [ "$have" -lt "$big_size" ] && ok "hash thread $resume_thread: killed: a partial file" ||
		fail "hash thread $resume_thread: killed: partial file has $have bytes"
	reset
	HF_HUB_HASH_THREAD=$resume_thread "$pull" tiny/big >/dev/null 2>"$work/err"
	check "hash thread $resume_thread: resumed run: complete" "$?" 0
	check "hash thread $resume_thread: resumed run: only the missing bytes" "$($ctl "$port" bytes "$cdn_big")" \
		"$((big_size - have))"
	check "hash thread $resume_thread: resumed run: Range from the partial size" \
		"$($ctl "$port" requests "$cdn_big" | cut -d' ' -f3)" "bytes=$have-"
	blobs_verified "resume $resume_thread" "$big"
	no_debris "resume $resume_thread" "$big"
done

# two processes, one copy
fresh
ctl_set '{"throttle": 4000000}'
"$pull" tiny/big >"$work/o1" 2>"$work/e1" &
p1=$!
"$pull" tiny/big >"$work/o2" 2>"$work/e2" &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
check "concurrent pulls both succeed" "$r1 $r2" "0 0"
check "concurrent pulls print the same dir" "$(cat "$work/o1")" "$(cat "$work/o2")"
check "concurrent pulls: the big file sent once" "$($ctl "$port" bytes "$cdn_big")" "$big_size"
check "concurrent pulls: both asked for the file, one fetched it" \
	"$($ctl "$port" requests /model.safetensors | grep -c ^HEAD) $($ctl "$port" requests "$cdn_big" | grep -c ^GET)" \
	"2 1"
check "concurrent pulls: two blobs" "$(ls "$big/blobs" | wc -l)" 2
blobs_verified "concurrent" "$big"
no_debris "concurrent" "$big"
reset

# --- --local-dir ----------------------------------------------------------
ld=$work/local
out=$("$pull" tiny/gpt2 --local-dir "$ld")
check "--local-dir prints the dir" "$out" "$ld"
[ -f "$ld/model.safetensors" ] && [ ! -L "$ld/model.safetensors" ] &&
	cmp -s "$ld/model.safetensors" "$fx/model.safetensors" &&
	ok "--local-dir: real files" || fail "--local-dir: real files"
meta=$ld/.cache/huggingface/download/model.safetensors.metadata
check "--local-dir metadata: commit, etag" "$(head -2 "$meta" | tr '\n' ' ')" "$gpt2 $st_sha "
sed -n 3p "$meta" | grep -Eq '^[0-9]+\.[0-9]+$' && ok "--local-dir metadata: timestamp" ||
	fail "--local-dir metadata: timestamp"
check "--local-dir nested metadata" \
	"$(sed -n 2p "$ld/.cache/huggingface/download/docs/sub/notes.txt.metadata")" \
	"$(git_sha1 "$ld/docs/sub/notes.txt")"
check "--local-dir .gitignore" "$(cat "$ld/.cache/huggingface/.gitignore")" "*"
reset
"$pull" tiny/gpt2 --local-dir "$ld" >/dev/null
check "--local-dir second run fetches nothing" \
	"$($ctl "$port" requests /resolve/ | wc -l)" 0
no_debris "local dir" "$ld"

# --- the man page's examples, as written there ---------------------------
export PATH="$bin:$PATH"
hf-pull tiny/gpt2@v1.0 --dry-run >"$work/out" 2>/dev/null
check "man: a tag's dry run" "$(cut -f3 "$work/out" | tr '\n' ' ')" \
	"config.json model.safetensors "
out=$(hf-pull tiny/gpt2 --include '*.json' --exclude 'tokenizer*')
check "man: include and exclude" "$out" "$snap"
out=$(hf-pull --repo-type dataset tiny/data -j 8)
check "man: a dataset with -j 8" "$out" \
	"$cache/datasets--tiny--data/snapshots/$(commit tiny/data@v1)"
out=$(HF_HUB_OFFLINE=1 hf-pull tiny/gpt2)
check "man: offline" "$out" "$snap"

echo "$fails failed"
[ "$fails" -eq 0 ]
