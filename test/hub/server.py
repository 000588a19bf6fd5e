#!/usr/bin/env python3
"""test/hub/server.py: a loopback stand-in for the Hugging Face Hub.

Serves the endpoints hf-pull uses, for a few repositories built from
test/fixtures/models, on 127.0.0.1 only:

  GET  /api/{models,datasets}/{repo}[/revision/{rev}]   repo info (+ siblings)
  HEAD /[datasets/]{repo}/resolve/{rev}/{path}           metadata headers
  GET  /[datasets/]{repo}/resolve/{rev}/{path}           small files; LFS files
                                                         302 to the "CDN"
  GET  /cdn/{sha256}?X-Amz-Signature=...                 LFS bodies, on a second
                                                         port (another host for
                                                         the client), with Range

Headers follow the Hub: ETag (git blob sha1 for regular files), X-Repo-Commit,
X-Linked-Etag (sha256) and X-Linked-Size for LFS files, X-Error-Code and
X-Error-Message on errors.

Test control (hub port):
  POST /_control  {"faults": [...], "throttle": bytes_per_s, "reset": true}
  GET  /_control/stats   {"bytes": {path: body bytes sent}, "requests": [...],
                          "cdn_auth": n requests to the CDN carrying a token}

A fault is {"kind": K, "match": substring of the request path, "count": n,
"method": "GET" (default any)} with K one of
  status   answer "code" (500, 429 with "retry_after") instead
  drop     send "at" body bytes of the response, then close the connection
  stall    send "at" body bytes, then sleep "seconds", then close
  corrupt  flip the body byte at offset "at" of the response
  norange  ignore the Range header: answer 200 with the whole body
Each matching request uses one count; faults apply in order.

Usage: server.py --fixtures DIR --port-file FILE [--big-mib N]
                 [--bench-file PATH] [--bench-shards DIR]
The port file gets "HUBPORT CDNPORT" once both listen.
"""
import argparse
import hashlib
import http.server
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse

TOKEN = "hf_test_token"	# reads tiny/private; is refused by tiny/gated
GATED_TOKEN = "hf_gated_ok"	# has accepted tiny/gated's terms
LFS_EXT = (".safetensors", ".bin", ".h5", ".msgpack", ".onnx", ".gguf",
	   ".pt", ".model")


class Blob:
	"""One file's content, in memory or on disk."""

	def __init__(self, data=None, path=None, lfs=None):
		self.data = data
		self.path = path
		self.size = len(data) if data is not None else os.path.getsize(path)
		h256 = hashlib.sha256()
		h1 = hashlib.sha1(b"blob %d\0" % self.size)
		for chunk in self.chunks(0, self.size):
			h256.update(chunk)
			h1.update(chunk)
		self.sha256 = h256.hexdigest()
		self.sha1 = h1.hexdigest()
		if lfs is None:
			lfs = self.size > 10 * 1024 * 1024
		self.lfs = lfs
		if lfs:
			# git stores the pointer file; its blob sha1 is the blobId
			ptr = ("version https://git-lfs.github.com/spec/v1\n"
			       "oid sha256:%s\nsize %d\n" % (self.sha256, self.size)).encode()
			self.pointer_size = len(ptr)
			self.sha1 = hashlib.sha1(b"blob %d\0" % len(ptr) + ptr).hexdigest()

	def chunks(self, start, end, step=1 << 20):
		if self.data is not None:
			for i in range(start, end, step):
				yield self.data[i:min(end, i + step)]
			return
		with open(self.path, "rb") as f:
			f.seek(start)
			left = end - start
			while left > 0:
				b = f.read(min(step, left))
				if not b:
					break
				left -= len(b)
				yield b


class Repo:
	def __init__(self, rtype, rid, private=False, gated=False):
		self.type = rtype
		self.id = rid
		self.private = private
		self.gated = gated
		self.refs = {}		# branch or tag -> commit sha
		self.commits = {}	# commit sha -> {path: Blob}

	def commit(self, name, files, refs=()):
		sha = hashlib.sha1((self.id + "@" + name).encode()).hexdigest()
		self.commits[sha] = files
		for r in refs:
			self.refs[r] = sha
		return sha

	def resolve(self, rev):
		if rev in self.refs:
			return self.refs[rev]
		if rev in self.commits:
			return rev
		return None


def fixture(root, model, name):
	with open(os.path.join(root, "models", model, name), "rb") as f:
		return f.read()


def build_repos(args):
	root = args.fixtures
	rnd = random.Random(5)
	repos = {}

	def add(r):
		repos[(r.type, r.id)] = r
		return r

	tok = open(os.path.join(root, "tokenizers", "gpt2", "tokenizer.json"),
		   "rb").read()
	g = add(Repo("model", "tiny/gpt2"))
	st = Blob(fixture(root, "gpt2-tiny", "model.safetensors"), lfs=True)
	old = {
		"config.json": Blob(b'{"model_type": "gpt2", "n_layer": 1}\n'),
		"model.safetensors": st,
	}
	g.commit("v1", old, refs=("v1.0", "refs/pr/1"))
	g.commit("v2", {
		".gitattributes": Blob(b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"),
		"README.md": Blob(b"# tiny gpt2\n"),
		"config.json": Blob(fixture(root, "gpt2-tiny", "config.json")),
		"generation_config.json": Blob(fixture(root, "gpt2-tiny", "generation_config.json")),
		"model.safetensors": st,
		"pytorch_model.bin": Blob(rnd.randbytes(3000), lfs=True),
		"flax_model.msgpack": Blob(rnd.randbytes(2000), lfs=True),
		"onnx/model.onnx": Blob(rnd.randbytes(1000), lfs=True),
		"tokenizer.json": Blob(tok),
		"tokenizer_config.json": Blob(b'{"model_max_length": 1024}\n'),
		"docs/sub/notes.txt": Blob(b"nested file\n"),
	}, refs=("main",))

	b = add(Repo("model", "tiny/big"))
	b.commit("v1", {
		"config.json": Blob(fixture(root, "llama-tiny", "config.json")),
		"model.safetensors": Blob(rnd.randbytes(args.big_mib << 20), lfs=True),
	}, refs=("main",))

	s = add(Repo("model", "tiny/sharded"))
	shards = {}
	wmap = {}
	for i in range(1, 4):
		name = "model-%05d-of-00003.safetensors" % i
		shards[name] = Blob(rnd.randbytes(300000 + i), lfs=True)
		wmap["layers.%d.weight" % i] = name
	index = {"metadata": {"total_size": 900006}, "weight_map": wmap}
	shards["model.safetensors.index.json"] = Blob(
		json.dumps(index, indent=2).encode() + b"\n")
	shards["config.json"] = Blob(fixture(root, "llama-tiny", "config.json"))
	s.commit("v1", shards, refs=("main",))

	p = add(Repo("model", "tiny/ptonly"))
	p.commit("v1", {
		"config.json": Blob(fixture(root, "bert-tiny", "config.json")),
		"pytorch_model.bin": Blob(rnd.randbytes(5000), lfs=True),
		"tf_model.h5": Blob(rnd.randbytes(4000), lfs=True),
	}, refs=("main",))

	q = add(Repo("model", "tiny/private", private=True))
	q.commit("v1", {
		"config.json": Blob(fixture(root, "qwen2-tiny", "config.json")),
		"model.safetensors": Blob(fixture(root, "qwen2-tiny", "model.safetensors"), lfs=True),
	}, refs=("main",))

	gt = add(Repo("model", "tiny/gated", gated="manual"))
	gt.commit("v1", {
		"config.json": Blob(fixture(root, "llama-tiny", "config.json")),
		"model.safetensors": Blob(fixture(root, "llama-tiny", "model.safetensors"), lfs=True),
	}, refs=("main",))

	d = add(Repo("dataset", "tiny/data"))
	d.commit("v1", {
		"README.md": Blob(b"# tiny data\n"),
		"data/train.jsonl": Blob(open(os.path.join(root, "tokenizers", "corpus.jsonl"), "rb").read()),
	}, refs=("main",))

	if args.bench_file or args.bench_shards:
		bench = add(Repo("model", "bench/big"))
		files = {}
		if args.bench_file:
			files[os.path.basename(args.bench_file)] = Blob(path=args.bench_file, lfs=True)
		if args.bench_shards:
			for n in sorted(os.listdir(args.bench_shards)):
				files["shards/" + n] = Blob(path=os.path.join(args.bench_shards, n), lfs=True)
		bench.commit("v1", files, refs=("main",))
	# tiny/old-gpt2 was renamed to tiny/gpt2: the Hub redirects (relative)
	repos[("model", "tiny/old-gpt2")] = "tiny/gpt2"
	return repos


class State:
	def __init__(self):
		self.lock = threading.Lock()
		self.faults = []
		self.throttle = 0
		self.reset()

	def reset(self):
		self.bytes = {}
		self.requests = []
		self.cdn_auth = 0

	def take_fault(self, method, path):
		with self.lock:
			for f in self.faults:
				if f.get("count", 1) <= 0:
					continue
				if f.get("method") and f["method"] != method:
					continue
				if f.get("match", "") not in path:
					continue
				f["count"] = f.get("count", 1) - 1
				return dict(f)
		return None

	def count(self, path, n):
		with self.lock:
			self.bytes[path] = self.bytes.get(path, 0) + n


class Handler(http.server.BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	server_version = "hubstub/1"

	def log_message(self, fmt, *args):
		if os.environ.get("HUB_SERVER_LOG"):
			sys.stderr.write("hub: " + fmt % args + "\n")

	# --- plumbing -------------------------------------------------------
	def send(self, code, body=b"", headers=(), ctype="application/json"):
		self.send_response(code)
		for k, v in headers:
			self.send_header(k, v)
		self.send_header("Content-Type", ctype)
		self.send_header("Content-Length", str(len(body)))
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(body)

	def error(self, code, ecode, msg, headers=()):
		hdr = list(headers)
		if ecode:
			hdr.append(("X-Error-Code", ecode))
		hdr.append(("X-Error-Message", msg))
		hdr.append(("X-Request-Id", "Root=1-test"))
		self.send(code, json.dumps({"error": msg}).encode(), hdr)

	def body_json(self):
		n = int(self.headers.get("Content-Length") or 0)
		return json.loads(self.rfile.read(n) or b"{}")

	@property
	def state(self):
		return self.server.state

	def do_HEAD(self):
		self.route()

	def do_GET(self):
		self.route()

	def do_POST(self):
		if self.path == "/_control":
			req = self.body_json()
			with self.state.lock:
				if req.get("reset"):
					self.state.reset()
				if "faults" in req:
					self.state.faults = req["faults"]
				if "throttle" in req:
					self.state.throttle = req["throttle"]
			return self.send(200, b"{}")
		self.error(405, None, "method not allowed")

	def route(self):
		url = urllib.parse.urlsplit(self.path)
		path = url.path
		st = self.state
		if path == "/_control/stats":
			with st.lock:
				body = json.dumps({"bytes": st.bytes, "requests": st.requests,
						   "cdn_auth": st.cdn_auth}).encode()
			return self.send(200, body)
		with st.lock:
			st.requests.append({"method": self.command,
					    "path": urllib.parse.unquote(path),
					    "range": self.headers.get("Range"),
					    "auth": self.headers.get("Authorization")})
		f = st.take_fault(self.command, urllib.parse.unquote(path))
		if f and f["kind"] == "status":
			hdr = []
			if f.get("retry_after") is not None:
				hdr.append(("Retry-After", str(f["retry_after"])))
			return self.error(f["code"], None, "injected %d" % f["code"], hdr)
		if self.server.role == "cdn":
			return self.cdn(path, f)
		if path.startswith("/api/"):
			return self.api(path)
		if "/resolve/" in path:
			return self.resolve(path, f)
		self.error(404, None, "no route for " + path)

	# --- access ---------------------------------------------------------
	def check_access(self, repo, rtype, rid):
		"""Answer an error and return False when the request may not read repo."""
		auth = self.headers.get("Authorization", "")
		token = auth[7:] if auth.startswith("Bearer ") else None
		if token and token not in (TOKEN, GATED_TOKEN):
			self.error(401, None, "Invalid credentials in Authorization header")
			return False
		if repo is None or (repo.private and not token):
			self.error(401, "RepoNotFound", "Repository not found")
			return False
		if repo.gated and token != GATED_TOKEN:
			if not token:
				self.error(401, "GatedRepo", "Access to model %s is restricted. "
					   "You must have access to it and be authenticated to "
					   "access it. Please log in." % rid)
			else:
				self.error(403, "GatedRepo", "Access to model %s is restricted "
					   "and you are not in the authorized list. Visit "
					   "https://huggingface.co/%s to ask for access." % (rid, rid))
			return False
		return True

	# --- /api -----------------------------------------------------------
	def api(self, path):
		parts = path[len("/api/"):]
		kind, _, rest = parts.partition("/")
		rtype = {"models": "model", "datasets": "dataset"}.get(kind)
		rev = "main"
		if "/revision/" in rest:
			rest, _, rev = rest.partition("/revision/")
		rid = urllib.parse.unquote(rest)
		rev = urllib.parse.unquote(rev)
		repo = self.server.repos.get((rtype, rid))
		if isinstance(repo, str):
			return self.send(307, b"", [("Location", path.replace(rid, repo, 1))])
		if not self.check_access(repo, rtype, rid):
			return
		sha = repo.resolve(rev)
		if sha is None:
			return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
		sibs = []
		for p, b in sorted(repo.commits[sha].items()):
			s = {"rfilename": p, "size": b.size, "blobId": b.sha1}
			if b.lfs:
				s["lfs"] = {"size": b.size, "sha256": b.sha256,
					    "pointerSize": b.pointer_size}
			sibs.append(s)
		info = {"_id": "0" * 24, "id": rid, "private": repo.private,
			"gated": repo.gated, "disabled": False, "sha": sha,
			"lastModified": "2024-01-01T00:00:00.000Z",
			"siblings": sibs}
		if rtype == "model":
			info["modelId"] = rid
		self.send(200, json.dumps(info).encode())

	# --- /resolve -------------------------------------------------------
	def resolve(self, path, fault):
		rtype = "model"
		p = path[1:]
		if p.startswith("datasets/"):
			rtype, p = "dataset", p[len("datasets/"):]
		rid, _, rest = p.partition("/resolve/")
		rev, _, fname = rest.partition("/")
		rid = urllib.parse.unquote(rid)
		rev = urllib.parse.unquote(rev)
		fname = urllib.parse.unquote(fname)
		repo = self.server.repos.get((rtype, rid))
		if isinstance(repo, str):
			return self.send(307, b"", [("Location", path.replace(rid, repo, 1))],
					 "text/plain")
		if not self.check_access(repo, rtype, rid):
			return
		sha = repo.resolve(rev)
		if sha is None:
			return self.error(404, "RevisionNotFound", "Invalid rev id: " + rev)
		blob = repo.commits[sha].get(fname)
		if blob is None:
			return self.error(404, "EntryNotFound", "Entry not found",
					  [("X-Repo-Commit", sha)])
		hdr = [("X-Repo-Commit", sha)]
		if blob.lfs:
			loc = "http://127.0.0.1:%d/cdn/%s?X-Amz-Signature=abc" % (
				self.server.cdn_port, blob.sha256)
			hdr += [("ETag", '"%s"' % blob.sha1),
				("X-Linked-Etag", '"%s"' % blob.sha256),
				("X-Linked-Size", str(blob.size)),
				("Location", loc)]
			return self.send(302, b"", hdr, "text/plain")
		hdr.append(("ETag", '"%s"' % blob.sha1))
		self.body(blob, hdr, fault, urllib.parse.unquote(path))

	# --- the CDN --------------------------------------------------------
	def cdn(self, path, fault):
		if self.headers.get("Authorization"):
			with self.state.lock:
				self.state.cdn_auth += 1
		sha = path[len("/cdn/"):]
		blob = self.server.blobs.get(sha)
		if blob is None:
			return self.error(404, None, "no such object")
		self.body(blob, [("ETag", '"%s"' % sha)], fault, path)

	def body(self, blob, hdr, fault, key):
		start, end, code = 0, blob.size, 200
		rng = self.headers.get("Range")
		if fault and fault["kind"] == "norange":
			rng = None
		if rng and rng.startswith("bytes="):
			a, _, b = rng[6:].partition("-")
			start = int(a)
			end = int(b) + 1 if b else blob.size
			if start >= blob.size or end > blob.size or start >= end:
				return self.error(416, None, "range not satisfiable",
						  [("Content-Range", "bytes */%d" % blob.size)])
			code = 206
			hdr = hdr + [("Content-Range", "bytes %d-%d/%d" % (start, end - 1, blob.size))]
		self.send_response(code)
		for k, v in hdr:
			self.send_header(k, v)
		self.send_header("Accept-Ranges", "bytes")
		self.send_header("Content-Type", "application/octet-stream")
		self.send_header("Content-Length", str(end - start))
		self.end_headers()
		if self.command == "HEAD":
			return
		cut = None
		if fault and fault["kind"] in ("drop", "stall"):
			cut = fault.get("at", 0)
		flip = fault.get("at") if fault and fault["kind"] == "corrupt" else None
		sent = 0
		throttle = self.state.throttle
		step = 64 * 1024 if throttle else 1 << 20
		t0 = time.monotonic()
		if cut is None and flip is None and not throttle and blob.path:
			self.wfile.flush()
			with open(blob.path, "rb") as f:
				try:
					while sent < end - start:
						n = self.connection.sendfile(f, start + sent, end - start - sent)
						if n == 0:
							break
						sent += n
				finally:
					self.state.count(key, sent)
			return
		try:
			for chunk in blob.chunks(start, end, step):
				if cut is not None and sent + len(chunk) >= cut:
					chunk = chunk[:cut - sent]
				if flip is not None and sent <= flip < sent + len(chunk):
					c = bytearray(chunk)
					c[flip - sent] ^= 0xff
					chunk = bytes(c)
				self.wfile.write(chunk)
				sent += len(chunk)
				self.state.count(key, len(chunk))
				if throttle:
					ahead = sent / throttle - (time.monotonic() - t0)
					if ahead > 0:
						time.sleep(ahead)
				if cut is not None and sent >= cut:
					break
		except (BrokenPipeError, ConnectionResetError):
			self.close_connection = True
			return
		if cut is not None:
			if fault["kind"] == "stall":
				time.sleep(fault.get("seconds", 30))
			self.close_connection = True
			try:
				self.connection.shutdown(socket.SHUT_RDWR)
			except OSError:
				pass


class Server(http.server.ThreadingHTTPServer):
	daemon_threads = True
	allow_reuse_address = True


def main():
	ap = argparse.ArgumentParser()
	ap.add_argument("--fixtures", required=True)
	ap.add_argument("--port-file", required=True)
	ap.add_argument("--big-mib", type=int, default=4)
	ap.add_argument("--bench-file")
	ap.add_argument("--bench-shards")
	args = ap.parse_args()
	repos = build_repos(args)
	blobs = {}
	for r in repos.values():
		if isinstance(r, str):
			continue
		for files in r.commits.values():
			for b in files.values():
				if b.lfs:
					blobs[b.sha256] = b
	state = State()
	hub = Server(("127.0.0.1", 0), Handler)
	cdn = Server(("127.0.0.1", 0), Handler)
	for s, role in ((hub, "hub"), (cdn, "cdn")):
		s.role = role
		s.state = state
		s.repos = repos
		s.blobs = blobs
		s.cdn_port = cdn.server_address[1]
	threading.Thread(target=cdn.serve_forever, daemon=True).start()
	tmp = args.port_file + ".tmp"
	with open(tmp, "w") as f:
		f.write("%d %d\n" % (hub.server_address[1], cdn.server_address[1]))
	os.rename(tmp, args.port_file)
	try:
		hub.serve_forever()
	except KeyboardInterrupt:
		pass


if __name__ == "__main__":
	main()
