"""A local fake of the Bot Framework's identity side: the OpenID metadata and signing keys the SDK
fetches to validate the ``Authorization: Bearer <jwt>`` of an incoming activity, and a minter of the
tokens the Bot Connector sends (good ones, and the broken ones refusal tests need)::

    from tests.fakes.botframework_auth import BotFrameworkIdentityFake

    with BotFrameworkIdentityFake() as identity:            # or: identity.start() ... identity.stop()
        config.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = identity.metadata_url
        config.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = identity.issuer   # "https://api.botframework.com"
        header = "Bearer " + identity.token(APP_ID, service_url=activity["serviceUrl"])

Faithful to what ``botframework-connector`` (4.17) checks, read from ``jwt_token_extractor.py`` and
``_parameterized_bot_framework_authentication.py``: the metadata document names ``jwks_uri``; each key
is an RSA JWK with ``kid`` and the ``endorsements`` (channel ids) the SDK compares with the activity's
``channelId``; tokens are RS256 with the claims the Bot Connector sends, ``iss``, ``aud`` (the bot's app
id), ``nbf``, ``exp`` and ``serviceurl`` (lower case: the SDK compares it with the activity's
``serviceUrl`` and refuses a token without it). There is no ``ver`` claim by default: with one and an
app-id audience the SDK takes the token for a skill's.

Served from a ``ThreadingHTTPServer`` in a daemon thread, not the test's event loop, because the SDK
fetches the metadata with the blocking ``requests`` library from inside the loop. Each fake's URLs
carry a random path segment, since the SDK caches metadata per URL for the whole process (a day).
``metadata_requests``/``jwks_requests`` count the fetches; ``fail_next("metadata"|"jwks", status)``
makes the next fetch fail.

Left out: the emulator and skill token paths (other issuers and metadata URLs), key rollover (the SDK
refetches at most hourly), certificate chains (``x5c``/``x5t``), and the AAD token endpoint a bot with
credentials calls for its own outbound token.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["BOT_FRAMEWORK_ISSUER", "BotFrameworkIdentityFake", "new_signing_key"]

#: ``iss`` of the tokens the Bot Connector sends to bots (``AuthenticationConstants.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER``).
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"

_SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512")


def new_signing_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key (e.g. one the fake does not publish, for ``token(sign_with=...)``)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class BotFrameworkIdentityFake:
    """OpenID metadata + JWKS on a random local port, and a token minter. See the module docstring."""

    def __init__(
        self,
        *,
        endorsements: Iterable[str] = ("msteams", "webchat", "directline"),
        issuer: str = BOT_FRAMEWORK_ISSUER,
        host: str = "127.0.0.1",
    ) -> None:
        self.issuer = issuer
        self.host = host
        self.endorsements: list[str] = list(endorsements)
        self.key = new_signing_key()
        self.kid = "fake-" + secrets.token_hex(8)
        self.metadata_requests = 0
        self.jwks_requests = 0
        self._prefix = "/" + secrets.token_hex(8)
        self._failures: dict[str, list[int]] = {"metadata": [], "jwks": []}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Start serving in a daemon thread; returns :attr:`metadata_url`."""
        if self._server is None:
            server = ThreadingHTTPServer((self.host, 0), _handler(self))
            server.daemon_threads = True
            # a short poll keeps stop() quick: shutdown() waits for the loop to notice
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                                            name="bf-identity-fake", daemon=True)
            self._thread.start()
            self._server = server
        return self.metadata_url

    def stop(self) -> None:
        """Stop serving. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BotFrameworkIdentityFake:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._server is None:
            raise RuntimeError("BotFrameworkIdentityFake is not started: call start() first")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        """For ``TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL``; unique to this fake."""
        return f"{self.origin}{self._prefix}/v1/.well-known/openidconfiguration"

    @property
    def jwks_url(self) -> str:
        return f"{self.origin}{self._prefix}/v1/.well-known/keys"

    # ------------------------------------------------------------------ behaviour control

    def fail_next(self, endpoint: str, status: int = 500, *, times: int = 1) -> None:
        """Answer the next ``times`` fetches of ``endpoint`` (``"metadata"`` or ``"jwks"``) with ``status``."""
        if endpoint not in self._failures:
            raise ValueError(f"fail_next: endpoint must be 'metadata' or 'jwks', got {endpoint!r}")
        if times < 1:
            raise ValueError(f"fail_next: times must be >= 1, got {times}")
        with self._lock:
            self._failures[endpoint].extend([status] * times)

    # ------------------------------------------------------------------ documents

    def metadata(self) -> dict[str, Any]:
        """The OpenID configuration document, shaped like login.botframework.com's."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": "https://invalid.botframework.com",
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": list(_SIGNING_ALGORITHMS),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        }

    def jwks(self) -> dict[str, Any]:
        key = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        key.update({"kid": self.kid, "use": "sig", "endorsements": list(self.endorsements)})
        return {"keys": [key]}

    # ------------------------------------------------------------------ tokens

    def token(
        self,
        app_id: str,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        expires_in: float = 3600,
        not_before: float | None = None,
        service_url: str | None = None,
        kid: str | None = None,
        sign_with: rsa.RSAPrivateKey | None = None,
        alg: str = "RS256",
        unsigned: bool = False,
        extra_claims: Mapping[str, Any] | None = None,
    ) -> str:
        """A token as the Bot Connector sends it to the bot ``app_id``, or a broken one.

        ``audience`` defaults to ``app_id``, ``issuer`` to :attr:`issuer`; ``exp`` is now +
        ``expires_in`` seconds (negative: already expired), ``nbf`` is ``not_before`` (a Unix time,
        default now). ``service_url`` becomes the ``serviceurl`` claim (omitted when ``None``: the SDK
        then refuses the token for any activity that has a ``serviceUrl``). ``sign_with`` signs with
        another key (still under this fake's ``kid`` unless ``kid`` says otherwise); ``unsigned``
        makes an ``alg: none`` token. ``extra_claims`` are merged last; a ``None`` value removes a claim.
        """
        if not app_id and audience is None:
            raise ValueError("token: app_id must not be empty (it is the audience)")
        now = time.time()
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": app_id if audience is None else audience,
            "nbf": int(now if not_before is None else not_before),
            "exp": int(now + expires_in),
        }
        if service_url is not None:
            claims["serviceurl"] = service_url
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        headers = {"kid": self.kid if kid is None else kid}
        if unsigned:
            return jwt.encode(claims, "", algorithm="none", headers=headers)  # "" is "no key" to PyJWT
        if alg not in _SIGNING_ALGORITHMS:
            raise ValueError(f"token: alg must be one of {', '.join(_SIGNING_ALGORITHMS)} (or unsigned=True), got {alg!r}")
        return jwt.encode(claims, sign_with or self.key, algorithm=alg, headers=headers)

    # ------------------------------------------------------------------ HTTP plumbing

    def _answer(self, path: str) -> tuple[int, dict[str, Any]]:
        endpoint = {f"{self._prefix}/v1/.well-known/openidconfiguration": "metadata",
                    f"{self._prefix}/v1/.well-known/keys": "jwks"}.get(path)
        if endpoint is None:
            return 404, {"error": "not found", "path": path}
        with self._lock:
            if endpoint == "metadata":
                self.metadata_requests += 1
            else:
                self.jwks_requests += 1
            failures = self._failures[endpoint]
            status = failures.pop(0) if failures else None
        if status is not None:
            return status, {"error": "injected failure"}
        return 200, self.metadata() if endpoint == "metadata" else self.jwks()


def _handler(fake: BotFrameworkIdentityFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
            status, body = fake._answer(self.path.split("?", 1)[0])
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    return Handler
