#!/usr/bin/python3
"""A forwarding proxy in front of a plain-HTTP registry that holds back the
GET of one blob: it answers only once the file GATE exists (or after 60 s),
so that a test can act while a pull is half done.

usage: slow_proxy.py PORT UPSTREAM(host:port) DIGEST GATE
"""
import os, sys, time, urllib.error, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, upstream, digest, gate = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Handler(BaseHTTPRequestHandler):
    def forward(self, method):
        if method == "GET" and self.path.endswith("/blobs/" + digest):
            deadline = time.time() + 60
            while not os.path.exists(gate) and time.time() < deadline:
                time.sleep(0.1)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
        req = urllib.request.Request(f"http://{upstream}{self.path}", method=method, headers=headers)
        try:
            r = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        self.send_response(r.status if hasattr(r, "status") else r.code)
        for k, v in r.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.forward("GET")

    def do_HEAD(self):
        self.forward("HEAD")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
