#!/usr/bin/python3
"""A registry that lies, for tests. The repository name picks the lie:

  good        an honest SIF artifact (control)
  baddigest   the blob's bytes do not match the manifest's digest
  longer      the blob body is longer than the descriptor's size
  truncated   Content-Length is right but the connection closes halfway (always)
  flaky       the first blob GET closes halfway; Range requests are honoured
  endless     the blob is an endless chunked body
  bigmanifest a 50 MB manifest
  badjson     a manifest that is not JSON
  liedigest   Docker-Content-Digest names another digest
  redirect    Basic auth; the blob GET redirects to another origin (port 2),
              which records any Authorization header it receives
  redirect401 the same, but the other origin answers 401 with a Bearer
              challenge whose realm is itself (credential harvesting)
  busy        503 twice (with Retry-After: 0), then honest
  slow        sends half the blob, then nothing for 60 s (a stall)

usage: hostile_server.py PORT PORT2 SIF LOG
"""
import base64, hashlib, json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, port2, sif_path, log_path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
sif = open(sif_path, "rb").read()
sif_digest = "sha256:" + hashlib.sha256(sif).hexdigest()
# "slow" serves another blob, so that no earlier pull has cached it.
slow_sif = sif + b"\0" * 65536
slow_digest = "sha256:" + hashlib.sha256(slow_sif).hexdigest()
r401_sif = sif + b"\1" * 4096
r401_digest = "sha256:" + hashlib.sha256(r401_sif).hexdigest()
busy_count = {"n": 0}
flaky_count = {"n": 0}
lock = threading.Lock()


def log(line):
    with lock, open(log_path, "a") as f:
        f.write(line + "\n")


def manifest_for(digest, size):
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.sylabs.sif.config.v1+json", "size": 2,
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
        "layers": [{"mediaType": "application/vnd.sylabs.sif.layer.v1.sif", "size": size,
                    "digest": digest, "annotations": {"org.opencontainers.image.title": "x.sif"}}],
    }, separators=(",", ":")).encode()


class Registry(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", headers=None, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        log(f"GET {self.path} auth={'yes' if self.headers.get('Authorization') else 'no'}")
        parts = self.path.split("/")
        if self.path == "/v2/":
            return self.reply(200, b"{}")
        if len(parts) < 5:
            return self.reply(404)
        repo, kind = parts[2], parts[3]
        if repo in ("redirect", "redirect401"):
            want = "Basic " + base64.b64encode(b"alice:alicepw").decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, b"{}", {"WWW-Authenticate": 'Basic realm="hostile"'})
        if repo == "busy":
            with lock:
                busy_count["n"] += 1
                n = busy_count["n"]
            if n <= 2:
                return self.reply(503, b"{}", {"Retry-After": "0"})
        if kind == "manifests":
            return self.manifest(repo)
        return self.blob(repo)

    def manifest(self, repo):
        ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        if repo == "bigmanifest":
            self.send_response(200)
            self.send_header("Content-Type", ct["Content-Type"])
            self.send_header("Content-Length", str(50 << 20))
            self.end_headers()
            try:
                chunk = b" " * (1 << 20)
                for _ in range(50):
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        if repo == "badjson":
            return self.reply(200, b"{not json", ctype=ct["Content-Type"])
        if repo == "slow":
            m = manifest_for(slow_digest, len(slow_sif))
        elif repo == "redirect401":
            m = manifest_for(r401_digest, len(r401_sif))
        else:
            m = manifest_for(sif_digest, len(sif))
        headers = {}
        if repo == "liedigest":
            headers["Docker-Content-Digest"] = "sha256:" + "0" * 64
        else:
            headers["Docker-Content-Digest"] = "sha256:" + hashlib.sha256(m).hexdigest()
        return self.reply(200, m, headers, ctype=ct["Content-Type"])

    def blob(self, repo):
        data = sif
        if repo in ("redirect", "redirect401"):
            self.send_response(307)
            target = "blob" if repo == "redirect" else "ask"
            self.send_header("Location", f"http://127.0.0.1:{port2}/storage/{target}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if repo == "baddigest":
            data = bytes(len(sif))
        if repo == "longer":
            return self.reply(200, sif + b"extra bytes", ctype="application/octet-stream")
        if repo in ("truncated", "flaky"):
            start = 0
            rng = self.headers.get("Range", "")
            with lock:
                flaky_count["n"] += 1
                first = flaky_count["n"] == 1
            if repo == "flaky" and rng.startswith("bytes="):
                start = int(rng[6:].rstrip("-"))
                body = sif[start:]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(sif) - 1}/{len(sif)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if repo == "flaky" and not first:
                return self.reply(200, sif, ctype="application/octet-stream")
            self.send_response(200)
            self.send_header("Content-Length", str(len(sif)))
            self.end_headers()
            self.wfile.write(sif[: len(sif) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if repo == "slow":
            self.send_response(200)
            self.send_header("Content-Length", str(len(slow_sif)))
            self.end_headers()
            self.wfile.write(slow_sif[: len(slow_sif) // 2])
            self.wfile.flush()
            log("SLOW started")
            time.sleep(60)
            return
        if repo == "endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"A" * 65536
            try:
                while True:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                return
        return self.reply(200, data, ctype="application/octet-stream")


class Storage(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        log(f"STORAGE GET {self.path} auth={'yes' if self.headers.get('Authorization') else 'no'}")
        if self.path == "/storage/ask":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port2}/token",service="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(sif)))
        self.end_headers()
        self.wfile.write(sif)


threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", port2), Storage).serve_forever,
                 daemon=True).start()
ThreadingHTTPServer(("127.0.0.1", port), Registry).serve_forever()
