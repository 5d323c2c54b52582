"""A MinIO in front of a real SeaweedFS: MinIO's admin API for users and policies, S3 passed through.

No MinIO server runs here (none on PyPI), so the bucket step's admin calls are served by this
stand-in, built from upstream rather than from our beliefs:

- the wire format is the MinIO Python SDK's own (``minio.MinioAdmin`` builds the requests): each
  request's SigV4 signature is recomputed with the SDK's ``minio.signer.sign_v4_s3`` for the key it
  names and refused (403 ``SignatureDoesNotMatch`` / ``InvalidAccessKeyId``) when it differs, and
  encrypted bodies (``add-user``) are opened with the SDK's ``minio.crypto.decrypt`` under the root
  secret, as MinIO's madmin does;
- the routes, methods and query names are those of MinIO's ``cmd/admin-router.go``
  (``add-canned-policy``, ``info-canned-policy``, ``add-user``, ``user-info``,
  ``set-user-or-group-policy``, ``set-user-status``, ``accountinfo``), the errors those of
  ``cmd/api-errors.go`` (404 ``XMinioAdminNoSuchUser`` / ``XMinioAdminNoSuchPolicy``, JSON
  ``{"Code", "Message"}``); ``add-user`` on an existing user sets its secret, like MinIO's;
- only the root key may manage IAM; ``accountinfo`` answers any valid key for itself.

Every other request (S3) is passed byte for byte to the SeaweedFS behind it, Host header included
(so SeaweedFS checks the signature itself). The users' policies are applied to that SeaweedFS as
identities (written to its filer's IAM store, ``/etc/iam/identities/<name>.json``, which its S3
gateway reloads within a second), so S3
enforces them for real: a policy is read back as the (bucket, read|readwrite) grants it allows
(read = GetObject + ListBucket, readwrite = also PutObject + DeleteObject), the translation
``demo.bootstrap.identities`` makes the other way. That translation, not MinIO's policy engine, is
the stand-in part: MinIO's own evaluation only a cluster proves.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import SplitResult, parse_qs, urlsplit

import httpx
from minio.credentials import Credentials
from minio.crypto import decrypt
from minio.signer import sign_v4_s3

from demo.bootstrap.identities import Grant, seaweedfs_actions
from demo.lakehouse.local import WAREHOUSE, LocalLakehouse, free_port

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]*)/s3/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)")


class _Body(io.RawIOBase):
    """A request body shaped like the urllib3 response the SDK's decrypt() reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        return self._data.read(n)

    def release_conn(self) -> None:
        pass


def grants_of(policy: dict) -> tuple[Grant, ...]:
    """The (bucket, access) a policy document allows (see the module docstring)."""
    allowed: dict[str, set[str]] = {}
    for statement in policy.get("Statement", []):
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = {actions} if isinstance(actions, str) else set(actions)
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            allowed.setdefault(resource.removeprefix("arn:aws:s3:::"), set()).update(actions)
    grants = []
    for resource, actions in allowed.items():
        if resource.endswith("/*") or "/" in resource:
            continue
        objects = allowed.get(f"{resource}/*", set())
        if {"s3:ListBucket"} <= actions and {"s3:GetObject"} <= objects:
            write = {"s3:PutObject", "s3:DeleteObject"} <= objects
            grants.append(Grant(resource, "readwrite" if write else "read"))
    return tuple(grants)


class MinioFront:
    def __init__(self, lake: LocalLakehouse) -> None:
        self.lake = lake
        self.root = (lake.access_key, lake.secret_key)
        self.users: dict[str, dict] = {}
        self.policies: dict[str, dict] = {}
        self.requests: list[str] = []
        self._written: set[str] = set()
        self._lock = threading.Lock()
        self.port = free_port()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/minio/admin/v3/"):
                    status, payload = front.admin(self.command, self.path, dict(self.headers.items()), body)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                status, headers, payload = front.proxy(self.command, self.path, self.headers, body)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MinioFront:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> MinioFront:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- S3: passed through ------------------------------------------------------------------

    def proxy(self, method: str, path: str, headers: object, body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.lake.s3_port, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers.items():  # type: ignore[attr-defined]
                if key.lower() not in ("connection",):
                    conn.putheader(key, value)
            conn.endheaders(body or None)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    # --- MinIO admin API ---------------------------------------------------------------------

    def _secret_of(self, access_key: str) -> str | None:
        if access_key == self.root[0]:
            return self.root[1]
        user = self.users.get(access_key)
        return user["secret"] if user and user["status"] == "enabled" else None

    def _authenticate(self, method: str, path: str, headers: dict, body: bytes) -> tuple[str | None, str | None]:
        """(access key, None) when the signature is right, else (None, error code)."""
        match = _AUTH.fullmatch(headers.get("Authorization", ""))
        if not match:
            return None, "AccessDenied"
        access_key, _, region, signed, _ = match.groups()
        secret = self._secret_of(access_key)
        if secret is None:
            return None, "InvalidAccessKeyId"
        lowered = {k.lower(): v for k, v in headers.items()}
        signed_headers = {name: lowered.get(name, "") for name in signed.split(";")}
        url = urlsplit(path)
        date = datetime.strptime(lowered["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expected = sign_v4_s3(
            method=method, url=SplitResult("http", lowered["host"], url.path, url.query, ""), region=region,
            headers=dict(signed_headers), credentials=Credentials(access_key, secret),
            content_sha256=lowered.get("x-amz-content-sha256", ""), date=date,
        )["Authorization"]
        if expected != headers.get("Authorization"):
            return None, "SignatureDoesNotMatch"
        return access_key, None

    @staticmethod
    def _error(status: int, code: str, message: str) -> tuple[int, bytes]:
        return status, json.dumps({"Code": code, "Message": message, "Resource": "/minio/admin/v3"}).encode()

    def admin(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        url = urlsplit(path)
        command = url.path.removeprefix("/minio/admin/v3/")
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append(f"{method} {command}")
        who, error = self._authenticate(method, path, headers, body)
        if error:
            return self._error(403, error, "The request signature we calculated does not match the signature you provided.")
        with self._lock:
            if (method, command) == ("GET", "accountinfo"):
                return 200, json.dumps({"AccountName": who, "Policy": self.policies.get(self.users.get(who, {}).get("policy", ""), {})}).encode()
            if who != self.root[0]:
                return self._error(403, "AccessDenied", "Access Denied.")
            if (method, command) == ("PUT", "add-canned-policy"):
                self.policies[query["name"]] = json.loads(body)
            elif (method, command) == ("GET", "info-canned-policy"):
                if query["name"] not in self.policies:
                    return self._error(404, "XMinioAdminNoSuchPolicy", "The canned policy does not exist.")
                return 200, json.dumps(self.policies[query["name"]]).encode()
            elif (method, command) == ("PUT", "add-user"):
                plain = json.loads(decrypt(_Body(body), self.root[1]))  # type: ignore[arg-type]
                user = self.users.setdefault(query["accessKey"], {"policy": ""})
                user.update(secret=plain["secretKey"], status=plain.get("status", "enabled"))
            elif (method, command) == ("GET", "user-info"):
                user = self.users.get(query["accessKey"])
                if user is None:
                    return self._error(404, "XMinioAdminNoSuchUser", "The specified user does not exist.")
                return 200, json.dumps({"policyName": user["policy"], "status": user["status"]}).encode()
            elif (method, command) == ("PUT", "set-user-or-group-policy"):
                if query["policyName"] not in self.policies:
                    return self._error(404, "XMinioAdminNoSuchPolicy", "The canned policy does not exist.")
                if query["userOrGroup"] not in self.users:
                    return self._error(404, "XMinioAdminNoSuchUser", "The specified user does not exist.")
                self.users[query["userOrGroup"]]["policy"] = query["policyName"]
            elif (method, command) == ("PUT", "set-user-status"):
                self.users[query["accessKey"]]["status"] = query["status"]
            else:
                return self._error(400, "XMinioAdminNotImplemented", f"{method} {command} is not part of this stand-in")
            self._apply()
        return 200, b""

    # --- the users' policies, enforced by SeaweedFS --------------------------------------------

    def identities(self) -> dict[str, dict]:
        """SeaweedFS identity per enabled user, in its filer IAM store's per-identity file format
        (``/etc/iam/identities/<name>.json``; an identity.json upload only adds new identities, it
        does not update an existing one's actions)."""
        return {
            f"minio-user-{access_key}": {
                "name": f"minio-user-{access_key}",
                "credentials": [{"access_key": access_key, "secret_key": user["secret"]}],
                "actions": seaweedfs_actions(grants_of(self.policies.get(user["policy"], {})), table_bucket=WAREHOUSE),
            }
            for access_key, user in self.users.items()
            if user["status"] == "enabled"
        }

    def _apply(self) -> None:
        folder = f"http://127.0.0.1:{self.lake.filer_port}/etc/iam/identities/"
        wanted = self.identities()
        for name, identity in wanted.items():
            httpx.post(folder, files={"file": (f"{name}.json", json.dumps(identity))}, timeout=10).raise_for_status()
        for name in self._written - set(wanted):
            httpx.delete(f"{folder}{name}.json", timeout=10)
        self._written = set(wanted)

    def wipe(self) -> None:
        """MinIO lost its data: no user, no policy."""
        with self._lock:
            self.users.clear()
            self.policies.clear()
            self._apply()

    def wait_applied(self, check, timeout: float = 10.0) -> None:  # noqa: ANN001
        """SeaweedFS reloads its identities within a second: wait until ``check()`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                check()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def s3_config_of_dist(documents: list[dict]) -> dict:
    """SeaweedFS identities for the clients' keys and grants in dist/ (the bucket Job's
    FLOE_S3_IDENTITIES__*), so a SeaweedFS standing in for MinIO knows every pod's key with the
    access the bucket step would give it."""
    from demo.bootstrap.identities import Keys, seaweedfs_s3_config
    from tests.support.manifests import container, resolve_env

    env = resolve_env(container(documents, "Job", "floe-minio-buckets"), documents)
    prefix = "FLOE_S3_IDENTITIES__"
    clients = {name[len(prefix):].split("__")[0].lower() for name in env if name.startswith(prefix)}
    keys, grants = {}, {}
    for client in sorted(clients):
        var = f"{prefix}{client.upper()}__"
        keys[client] = Keys(env[f"{var}ACCESS_KEY_ID"], env[f"{var}SECRET_ACCESS_KEY"])
        grants[client] = tuple(Grant(bucket, access) for bucket, access in json.loads(env[f"{var}GRANTS"]).items())
    return seaweedfs_s3_config(keys, grants, table_bucket=WAREHOUSE)
