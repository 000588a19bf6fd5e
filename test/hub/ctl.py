#!/usr/bin/env python3
"""test/hub/ctl.py: drive test/hub/server.py from a test script.

  ctl.py PORT set JSON          POST /_control (faults, throttle, reset)
  ctl.py PORT bytes SUBSTR      body bytes sent for paths containing SUBSTR
  ctl.py PORT requests [SUBSTR] "METHOD PATH RANGE AUTH" per request
  ctl.py PORT cdn-auth          requests to the CDN that carried a token
  ctl.py commit REPO@NAME       the commit sha the server gives that commit
"""
import hashlib
import json
import sys
import urllib.request


def main():
	if sys.argv[1] == "commit":
		print(hashlib.sha1(sys.argv[2].encode()).hexdigest())
		return
	base = "http://127.0.0.1:%s/_control" % sys.argv[1]
	cmd = sys.argv[2]
	if cmd == "set":
		req = urllib.request.Request(base, data=sys.argv[3].encode(),
					     method="POST")
		urllib.request.urlopen(req).read()
		return
	stats = json.load(urllib.request.urlopen(base + "/stats"))
	if cmd == "bytes":
		print(sum(n for p, n in stats["bytes"].items() if sys.argv[3] in p))
	elif cmd == "requests":
		sub = sys.argv[3] if len(sys.argv) > 3 else ""
		for r in stats["requests"]:
			if sub in r["path"]:
				print(r["method"], r["path"], r["range"] or "-",
				      "auth" if r["auth"] else "-")
	elif cmd == "cdn-auth":
		print(stats["cdn_auth"])
	else:
		sys.exit("ctl.py: unknown command " + cmd)


if __name__ == "__main__":
	main()
