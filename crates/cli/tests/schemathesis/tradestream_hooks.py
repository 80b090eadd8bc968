"""Schemathesis hooks for the gateway's OpenAPI check: every generated request is signed.

The gateway authenticates requests by Ed25519 signatures over
"{timestamp}\n{nonce}\n{METHOD}\n{path-and-query}\n{body}" (docs/gateway.md). A signature must be
made over the exact bytes sent, so it is computed by a `requests` auth object, which runs after
the body is serialized. The key comes from the environment:
  TS_KEY_ID   the key id (`X-TS-Key`)
  TS_KEY_PEM  the PKCS#8 PEM file of its private key (`tradestream keys new`)
"""

import base64
import os
import secrets
import time

import requests
import schemathesis
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SignedRequest(requests.auth.AuthBase):
    """Adds the X-TS-* headers to a prepared request."""

    def __init__(self, key_id: str, key) -> None:
        self.key_id = key_id
        self.key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        ts = str(int(time.time() * 1000))
        nonce = secrets.token_urlsafe(18)
        message = b"\n".join(
            [ts.encode(), nonce.encode(), request.method.encode(), request.path_url.encode(), body]
        )
        request.headers["X-TS-Key"] = self.key_id
        request.headers["X-TS-Timestamp"] = ts
        request.headers["X-TS-Nonce"] = nonce
        request.headers["X-TS-Signature"] = _b64url(self.key.sign(message))
        return request


_AUTH = None


def _auth() -> SignedRequest:
    global _AUTH
    if _AUTH is None:
        with open(os.environ["TS_KEY_PEM"], "rb") as f:
            key = load_pem_private_key(f.read(), password=None)
        _AUTH = SignedRequest(os.environ["TS_KEY_ID"], key)
    return _AUTH


@schemathesis.hook
def before_call(context, case, kwargs):
    kwargs["auth"] = _auth()
