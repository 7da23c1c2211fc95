#!/usr/bin/python3
"""A minimal Docker token service for tests: issues RS256 JWTs that
docker-registry accepts (auth: token, rootcertbundle = CERT).

usage: token_server.py PORT KEY.pem CERT.pem USERS ISSUER SERVICE LOG
USERS: "alice:pw,bob:pw". Repositories under "private/" are granted only to
alice; everything else may be pulled by anyone and pushed by any known user.
Each request is logged (scope, user) to LOG for the tests to inspect.
"""
import base64, json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse, parse_qs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, key_path, cert_path, users_arg, issuer, service, log_path = sys.argv[1:8]
key = serialization.load_pem_private_key(open(key_path, "rb").read(), None)
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
cert_der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
users = dict(u.split(":", 1) for u in users_arg.split(","))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub, access):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [cert_der]}
    now = int(time.time())
    claims = {"iss": issuer, "sub": sub, "aud": service, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": os.urandom(8).hex(), "access": access}
    signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing + "." + b64url(sig)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        user = ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            if users.get(u) != p:
                self.send_response(401)
                self.end_headers()
                return
            user = u
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            name, actions = parts[1], parts[2].split(",")
            allowed = []
            if name.startswith("private/"):
                if user == "alice":
                    allowed = [a for a in actions if a in ("pull", "push")]
            else:
                allowed = [a for a in actions if a == "pull" or (a == "push" and user)]
            access.append({"type": "repository", "name": name, "actions": allowed})
        with open(log_path, "a") as f:
            f.write(json.dumps({"user": user, "scope": q.get("scope", [])}) + "\n")
        body = json.dumps({"token": mint(user or "anonymous", access), "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()
