"""An in-process fake of the parts of Polaris the init Job uses, strict about request bodies.

No real Polaris can run on these machines, so this stands in for it. Every request body is parsed
with the ``apache_polaris`` SDK's own pydantic models and must survive a round trip through them
(unknown fields, wrong types and missing required fields are 400s and are recorded in ``errors``).
Semantics follow Polaris (apache/polaris PolarisServiceImpl / PolarisAdminService):

* creates answer 201, or 409 when the entity exists;
* ``POST /principals/{name}/reset`` is root-only, accepts caller-chosen credentials only as 16 / 32
  lowercase hex characters (400 otherwise), and 409s a client id held by another principal;
* grants and role assignments are sets (adding twice changes nothing);
* the token endpoint takes client_credentials and answers 401 for unknown credentials.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from apache_polaris.sdk.catalog.models.create_namespace_request import CreateNamespaceRequest
from apache_polaris.sdk.management.models import (
    AddGrantRequest,
    CreateCatalogRequest,
    CreateCatalogRoleRequest,
    CreatePrincipalRequest,
    CreatePrincipalRoleRequest,
    GrantCatalogRoleRequest,
    GrantPrincipalRoleRequest,
    ResetPrincipalRequest,
)
from pydantic import BaseModel, SecretStr

REALM_HEADER = "Polaris-Realm"
CLIENT_ID = re.compile(r"^[0-9a-f]{16}$")
CLIENT_SECRET = re.compile(r"^[0-9a-f]{32}$")


class Invalid(Exception):
    """A request body the real Polaris would reject as malformed."""


def _plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def _known_keys_only(sent: Any, echoed: Any, path: str) -> None:
    if isinstance(sent, dict):
        if not isinstance(echoed, dict):
            raise Invalid(f"{path or '<body>'}: expected an object")
        unknown = sorted(set(sent) - set(echoed))
        if unknown:
            raise Invalid(f"{path or '<body>'}: fields unknown to the API model: {unknown}")
        for key, value in sent.items():
            _known_keys_only(value, echoed[key], f"{path}.{key}")
    elif isinstance(sent, list):
        if not isinstance(echoed, list) or len(sent) != len(echoed):
            raise Invalid(f"{path}: list changed in the round trip")
        for index, (a, b) in enumerate(zip(sent, echoed, strict=True)):
            _known_keys_only(a, b, f"{path}[{index}]")


def validate_body(model: type[BaseModel], body: Any) -> Any:
    """Parse ``body`` with the SDK model and require every field sent to be one the model knows."""
    if not isinstance(body, dict):
        raise Invalid(f"{model.__name__}: body must be a JSON object")
    try:
        parsed = model.from_dict(body)  # type: ignore[attr-defined]
    except Exception as exc:  # pydantic.ValidationError, or ValueError from a discriminator
        raise Invalid(f"{model.__name__}: {exc}") from exc
    if parsed is None:
        raise Invalid(f"{model.__name__}: empty body")
    echoed = json.loads(json.dumps(parsed.to_dict(), default=_plain))
    _known_keys_only(body, echoed, "")
    return parsed


def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "code": status}}


@dataclass
class Call:
    method: str
    path: str
    status: int

    @property
    def mutating(self) -> bool:
        return self.method in ("POST", "PUT", "DELETE") and not self.path.endswith("/oauth/tokens")


@dataclass
class PolarisState:
    realm: str
    root_client_id: str
    root_client_secret: str
    catalogs: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespaces: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    # principal name -> {"clientId": ..., "clientSecret": ...}
    principals: dict[str, dict[str, str]] = field(default_factory=dict)
    principal_roles: set[str] = field(default_factory=set)
    catalog_roles: set[tuple[str, str]] = field(default_factory=set)
    grants: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    catalog_roles_of_principal_role: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    principal_roles_of_principal: dict[str, set[str]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> principal name ("root")
    # (catalog, namespace, table) -> metadata location; loading checks the file through `object_exists`
    tables: dict[tuple[str, str, str], str] = field(default_factory=dict)


class FakePolaris:
    """Start with :meth:`start`, stop with :meth:`stop`; inspect ``state``, ``calls``, ``errors``."""

    def __init__(self, *, realm: str, root_client_id: str, root_client_secret: str, port: int = 0) -> None:
        self.state = PolarisState(realm, root_client_id, root_client_secret)
        self.calls: list[Call] = []
        self.errors: list[str] = []
        self.unavailable_requests = 0  # answer 503 to this many requests first (starting up)
        # How Polaris reads a table's metadata file (its FileIO on MinIO); tests pass an S3 check.
        self.object_exists: Callable[[str], bool] = lambda location: True
        self.lock = threading.Lock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakePolaris:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, payload = fake.handle(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- helpers for tests ------------------------------------------------------------------------

    def mutations(self) -> list[Call]:
        return [call for call in self.calls if call.mutating]

    def token_for(self, client_id: str, client_secret: str) -> int:
        """Status the token endpoint gives these credentials (200 or 401), without recording a call."""
        status, _ = self._token(f"grant_type=client_credentials&client_id={client_id}"
                                f"&client_secret={client_secret}&scope=PRINCIPAL_ROLE:ALL".encode())
        return status

    # -- request handling -------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        with self.lock:
            if self.unavailable_requests > 0:
                self.unavailable_requests -= 1
                status, payload = 503, None
            else:
                try:
                    status, payload = self._route(method, urlparse(raw_path).path, headers, raw)
                except Invalid as exc:
                    self.errors.append(f"{method} {raw_path}: {exc}")
                    status, payload = _error(400, str(exc), "BadRequestException")
            self.calls.append(Call(method, urlparse(raw_path).path, status))
            return status, payload

    def _route(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path == "/api/catalog/v1/oauth/tokens" and method == "POST":
            if headers.get(REALM_HEADER) != self.state.realm:
                raise Invalid(f"missing or wrong {REALM_HEADER} header")
            return self._token(raw)
        if headers.get(REALM_HEADER) != self.state.realm:
            raise Invalid(f"missing or wrong {REALM_HEADER} header")
        caller = self.state.tokens.get(headers.get("Authorization", "").removeprefix("Bearer "))
        if caller is None:
            return _error(401, "not authenticated", "NotAuthorizedException")
        body = json.loads(raw) if raw else None
        for pattern, route_method, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                if caller != "root":
                    return _error(403, f"principal {caller} is not authorized", "ForbiddenException")
                return handler(body, *(unquote(group) for group in match.groups()))
        return _error(404, f"no route {method} {path}", "NotFoundException")

    def _routes(self) -> list[tuple[str, str, Callable[..., tuple[int, Any]]]]:
        m = "/api/management/v1"
        return [
            (rf"{m}/catalogs", "POST", self._create_catalog),
            (rf"{m}/catalogs/([^/]+)", "GET", self._get_catalog),
            (rf"{m}/principals", "POST", self._create_principal),
            (rf"{m}/principals/([^/]+)", "GET", self._get_principal),
            (rf"{m}/principals/([^/]+)/reset", "POST", self._reset),
            (rf"{m}/principal-roles", "POST", self._create_principal_role),
            (rf"{m}/catalogs/([^/]+)/catalog-roles", "POST", self._create_catalog_role),
            (rf"{m}/catalogs/([^/]+)/catalog-roles/([^/]+)/grants", "GET", self._list_grants),
            (rf"{m}/catalogs/([^/]+)/catalog-roles/([^/]+)/grants", "PUT", self._add_grant),
            (rf"{m}/principal-roles/([^/]+)/catalog-roles/([^/]+)", "GET", self._list_catalog_roles_of),
            (rf"{m}/principal-roles/([^/]+)/catalog-roles/([^/]+)", "PUT", self._assign_catalog_role),
            (rf"{m}/principals/([^/]+)/principal-roles", "GET", self._list_principal_roles_of),
            (rf"{m}/principals/([^/]+)/principal-roles", "PUT", self._assign_principal_role),
            (r"/api/catalog/v1/([^/]+)/namespaces", "POST", self._create_namespace),
            (r"/api/catalog/v1/([^/]+)/namespaces/([^/]+)/tables", "GET", self._list_tables),
            (r"/api/catalog/v1/([^/]+)/namespaces/([^/]+)/tables/([^/]+)", "GET", self._load_table),
            (r"/api/catalog/v1/([^/]+)/namespaces/([^/]+)/tables/([^/]+)", "DELETE", self._drop_table),
        ]

    def _token(self, raw: bytes) -> tuple[int, Any]:
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials" or form.get("scope") != "PRINCIPAL_ROLE:ALL":
            raise Invalid(f"unexpected token request fields: {sorted(form)}")
        who = None
        if (form.get("client_id"), form.get("client_secret")) == (
            self.state.root_client_id,
            self.state.root_client_secret,
        ):
            who = "root"
        for name, creds in self.state.principals.items():
            if (form.get("client_id"), form.get("client_secret")) == (creds["clientId"], creds["clientSecret"]):
                who = name
        if who is None:
            return 401, {"error": "invalid_client", "error_description": "The client is not authorized"}
        token = secrets.token_hex(16)
        self.state.tokens[token] = who
        return 200, {
            "access_token": token,
            "token_type": "bearer",
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "expires_in": 3600,
        }

    # management API

    def _create_catalog(self, body: Any) -> tuple[int, Any]:
        request = validate_body(CreateCatalogRequest, body)
        name = request.catalog.name
        if name in self.state.catalogs:
            return _error(409, f"Cannot create Catalog {name}. Catalog already exists", "AlreadyExistsException")
        stored = json.loads(json.dumps(request.catalog.to_dict(), default=_plain))
        stored.update(createTimestamp=1, lastUpdateTimestamp=1, entityVersion=1)
        self.state.catalogs[name] = stored
        return 201, stored

    def _get_catalog(self, _body: Any, name: str) -> tuple[int, Any]:
        if name not in self.state.catalogs:
            return _error(404, f"Catalog {name} not found", "NotFoundException")
        return 200, self.state.catalogs[name]

    def _principal_json(self, name: str) -> dict[str, Any]:
        return {"name": name, "clientId": self.state.principals[name]["clientId"], "properties": {},
                "createTimestamp": 1, "lastUpdateTimestamp": 1, "entityVersion": 1}

    def _with_credentials(self, name: str) -> dict[str, Any]:
        return {"principal": self._principal_json(name), "credentials": dict(self.state.principals[name])}

    def _create_principal(self, body: Any) -> tuple[int, Any]:
        request = validate_body(CreatePrincipalRequest, body)
        if request.principal is None:
            raise Invalid("CreatePrincipalRequest without a principal")
        name = request.principal.name
        if name in self.state.principals:
            return _error(409, f"Cannot create Principal {name}. Principal already exists", "AlreadyExistsException")
        self.state.principals[name] = {"clientId": secrets.token_hex(8), "clientSecret": secrets.token_hex(16)}
        self.state.principal_roles_of_principal[name] = set()
        return 201, self._with_credentials(name)

    def _get_principal(self, _body: Any, name: str) -> tuple[int, Any]:
        if name not in self.state.principals:
            return _error(404, f"Principal {name} not found", "NotFoundException")
        return 200, self._principal_json(name)

    def _reset(self, body: Any, name: str) -> tuple[int, Any]:
        request = validate_body(ResetPrincipalRequest, body if body is not None else {})
        if name not in self.state.principals:
            return _error(404, f"Principal {name} not found", "NotFoundException")
        client_id = request.client_id
        client_secret = request.client_secret.get_secret_value() if request.client_secret else None
        if client_id is not None and not CLIENT_ID.match(client_id):
            return _error(400, "Invalid clientId format", "IllegalArgumentException")
        if client_secret is not None and not CLIENT_SECRET.match(client_secret):
            return _error(400, "Invalid clientSecret format", "IllegalArgumentException")
        for other, creds in self.state.principals.items():
            if other != name and creds["clientId"] == client_id:
                return _error(409, f"Client ID already in use: {client_id}", "AlreadyExistsException")
        current = self.state.principals[name]
        self.state.principals[name] = {
            "clientId": client_id or current["clientId"],
            "clientSecret": client_secret or secrets.token_hex(16),
        }
        return 200, self._with_credentials(name)

    def _create_principal_role(self, body: Any) -> tuple[int, Any]:
        request = validate_body(CreatePrincipalRoleRequest, body)
        name = request.principal_role.name
        if name in self.state.principal_roles:
            return _error(409, f"Cannot create PrincipalRole {name}. Already exists", "AlreadyExistsException")
        self.state.principal_roles.add(name)
        return 201, {"name": name, "federated": False, "properties": {}}

    def _create_catalog_role(self, body: Any, catalog: str) -> tuple[int, Any]:
        request = validate_body(CreateCatalogRoleRequest, body)
        if catalog not in self.state.catalogs:
            return _error(404, f"Catalog {catalog} not found", "NotFoundException")
        name = request.catalog_role.name
        if (catalog, name) in self.state.catalog_roles:
            message = f"Cannot create CatalogRole {name} in {catalog}. Already exists"
            return _error(409, message, "AlreadyExistsException")
        self.state.catalog_roles.add((catalog, name))
        self.state.grants[(catalog, name)] = []
        return 201, {"name": name, "properties": {}}

    def _require_catalog_role(self, catalog: str, role: str) -> tuple[int, Any] | None:
        if (catalog, role) not in self.state.catalog_roles:
            return _error(404, f"CatalogRole {role} not found in catalog {catalog}", "NotFoundException")
        return None

    def _list_grants(self, _body: Any, catalog: str, role: str) -> tuple[int, Any]:
        return self._require_catalog_role(catalog, role) or (200, {"grants": self.state.grants[(catalog, role)]})

    def _add_grant(self, body: Any, catalog: str, role: str) -> tuple[int, Any]:
        request = validate_body(AddGrantRequest, body)
        if (missing := self._require_catalog_role(catalog, role)) is not None:
            return missing
        grant = json.loads(json.dumps(request.grant.to_dict(), default=_plain))
        if grant not in self.state.grants[(catalog, role)]:
            self.state.grants[(catalog, role)].append(grant)
        return 201, None

    def _list_catalog_roles_of(self, _body: Any, principal_role: str, catalog: str) -> tuple[int, Any]:
        if principal_role not in self.state.principal_roles:
            return _error(404, f"PrincipalRole {principal_role} not found", "NotFoundException")
        names = sorted(self.state.catalog_roles_of_principal_role.get((principal_role, catalog), set()))
        return 200, {"roles": [{"name": name, "properties": {}} for name in names]}

    def _assign_catalog_role(self, body: Any, principal_role: str, catalog: str) -> tuple[int, Any]:
        request = validate_body(GrantCatalogRoleRequest, body)
        if principal_role not in self.state.principal_roles:
            return _error(404, f"PrincipalRole {principal_role} not found", "NotFoundException")
        if (missing := self._require_catalog_role(catalog, request.catalog_role.name)) is not None:
            return missing
        self.state.catalog_roles_of_principal_role.setdefault((principal_role, catalog), set()).add(
            request.catalog_role.name
        )
        return 201, None

    def _list_principal_roles_of(self, _body: Any, principal: str) -> tuple[int, Any]:
        if principal not in self.state.principals:
            return _error(404, f"Principal {principal} not found", "NotFoundException")
        names = sorted(self.state.principal_roles_of_principal[principal])
        return 200, {"roles": [{"name": name, "federated": False, "properties": {}} for name in names]}

    def _assign_principal_role(self, body: Any, principal: str) -> tuple[int, Any]:
        request = validate_body(GrantPrincipalRoleRequest, body)
        if principal not in self.state.principals:
            return _error(404, f"Principal {principal} not found", "NotFoundException")
        if request.principal_role.name not in self.state.principal_roles:
            return _error(404, f"PrincipalRole {request.principal_role.name} not found", "NotFoundException")
        self.state.principal_roles_of_principal[principal].add(request.principal_role.name)
        return 201, None

    # Iceberg REST

    def _create_namespace(self, body: Any, prefix: str) -> tuple[int, Any]:
        request = validate_body(CreateNamespaceRequest, body)
        if prefix not in self.state.catalogs:
            return _error(404, f"Catalog {prefix} not found", "NotFoundException")
        key = (prefix, tuple(request.namespace))
        if key in self.state.namespaces:
            return _error(409, f"Namespace already exists: {'.'.join(request.namespace)}", "AlreadyExistsException")
        self.state.namespaces.add(key)
        return 200, {"namespace": list(request.namespace), "properties": request.properties or {}}

    def _list_tables(self, _body: Any, prefix: str, namespace: str) -> tuple[int, Any]:
        if (prefix, (namespace,)) not in self.state.namespaces:
            return _error(404, f"Namespace does not exist: {namespace}", "NoSuchNamespaceException")
        names = sorted(t for (c, n, t) in self.state.tables if (c, n) == (prefix, namespace))
        return 200, {"identifiers": [{"namespace": [namespace], "name": t} for t in names]}

    def _load_table(self, _body: Any, prefix: str, namespace: str, table: str) -> tuple[int, Any]:
        location = self.state.tables.get((prefix, namespace, table))
        if location is None:
            return _error(404, f"Table does not exist: {namespace}.{table}", "NoSuchTableException")
        if not self.object_exists(location):
            # Polaris: the FileIO's org.apache.iceberg.exceptions.NotFoundException, mapped to 404.
            return _error(404, f"Location does not exist: {location}", "NotFoundException")
        return 200, {"metadata-location": location, "metadata": {}}

    def _drop_table(self, _body: Any, prefix: str, namespace: str, table: str) -> tuple[int, Any]:
        if self.state.tables.pop((prefix, namespace, table), None) is None:
            return _error(404, f"Table does not exist: {namespace}.{table}", "NoSuchTableException")
        return 204, None
