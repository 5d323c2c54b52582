"""Initialise Polaris: catalog, namespaces, least-privilege principals, idempotently.

Runs with the realm's root credentials (only Polaris and this Job have them) and talks to Polaris
through the ``apache_polaris`` SDK: its management client for catalogs/principals/roles/grants and its
Iceberg REST client for namespaces. The sequence (stack.md, after Polaris' getting-started setup):

    catalog -> namespaces -> principals (+ credentials) -> principal roles -> catalog roles
    -> grants -> assignments

Idempotency rules:

* Creates that answer 409 mean "exists" and are fine.
* Grants and role assignments are listed first and only the missing ones are added, so a re-run
  of a complete setup makes no mutating call at all.
* A principal's credentials must equal the ones in our Secret. Polaris generates credentials at
  creation, so right after creating a principal we set ours with ``POST /principals/{name}/reset``
  (root only, feature flag ``ENABLE_CREDENTIAL_RESET``, default on). On a re-run we first try the
  Secret's credentials against the token endpoint: if they work, nothing is touched (never
  rotated); only if they do not (a crash between create and reset, or a changed Secret) do we reset
  them to the Secret's values.
* The catalog is created without credential vending (``stsUnavailable``) and with no S3 keys in its
  properties: properties are served to every client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import urllib3
from apache_polaris.sdk import catalog as iceberg_sdk
from apache_polaris.sdk import management as mgmt
from apache_polaris.sdk.catalog.api.iceberg_catalog_api import IcebergCatalogAPI
from apache_polaris.sdk.catalog.models.create_namespace_request import CreateNamespaceRequest
from apache_polaris.sdk.management.api.polaris_default_api import PolarisDefaultApi
from apache_polaris.sdk.management.models import (
    AddGrantRequest,
    AwsStorageConfigInfo,
    CatalogGrant,
    CatalogPrivilege,
    CatalogProperties,
    CatalogRole,
    CreateCatalogRequest,
    CreateCatalogRoleRequest,
    CreatePrincipalRequest,
    CreatePrincipalRoleRequest,
    GrantCatalogRoleRequest,
    GrantPrincipalRoleRequest,
    PolarisCatalog,
    Principal,
    PrincipalRole,
    ResetPrincipalRequest,
)
from pydantic import SecretStr

from demo.bootstrap.settings import PolarisInitSettings
from demo.bootstrap.waiting import BootstrapError, NotReady, Reporter, wait_until_ready

#: The writer (Dagster, dbt) manages tables and namespaces in the catalog, nothing outside it.
WRITER_PRIVILEGES: tuple[CatalogPrivilege, ...] = (CatalogPrivilege.CATALOG_MANAGE_CONTENT,)

#: The reader (Cube) lists and reads; it can create, change or drop nothing. Polaris authorises
#: listing namespaces with NAMESPACE_LIST, loading a namespace with NAMESPACE_READ_PROPERTIES, listing
#: tables with TABLE_LIST, loading a table with TABLE_READ_PROPERTIES, and loading it with the
#: access-delegation header (pyiceberg sends it by default) with TABLE_READ_DATA; views likewise
#: (PolarisAuthorizableOperation in apache/polaris). Granted on the catalog, so they cover every
#: namespace, including ones created later.
READER_PRIVILEGES: tuple[CatalogPrivilege, ...] = (
    CatalogPrivilege.NAMESPACE_LIST,
    CatalogPrivilege.NAMESPACE_READ_PROPERTIES,
    CatalogPrivilege.TABLE_LIST,
    CatalogPrivilege.TABLE_READ_PROPERTIES,
    CatalogPrivilege.TABLE_READ_DATA,
    CatalogPrivilege.VIEW_LIST,
    CatalogPrivilege.VIEW_READ_PROPERTIES,
)


@dataclass(frozen=True)
class Step:
    """What one step found or did: ``outcome`` is created / exists / added / present / reset / unchanged."""

    kind: str
    name: str
    outcome: str


@dataclass(frozen=True)
class PrincipalSpec:
    name: str
    principal_role: str
    catalog_role: str
    client_id: str
    client_secret: SecretStr
    privileges: tuple[CatalogPrivilege, ...]


def principal_specs(settings: PolarisInitSettings) -> tuple[PrincipalSpec, PrincipalSpec]:
    return (
        PrincipalSpec(
            settings.writer_principal,
            settings.writer_principal_role,
            settings.writer_catalog_role,
            settings.writer_client_id,
            settings.writer_client_secret,
            WRITER_PRIVILEGES,
        ),
        PrincipalSpec(
            settings.reader_principal,
            settings.reader_principal_role,
            settings.reader_catalog_role,
            settings.reader_client_id,
            settings.reader_client_secret,
            READER_PRIVILEGES,
        ),
    )


def catalog_request(settings: PolarisInitSettings) -> CreateCatalogRequest:
    """The catalog we want: S3 on MinIO, path-style, no STS (so no credential vending), no keys."""
    storage = AwsStorageConfigInfo(
        storage_type="S3",
        allowed_locations=[settings.catalog_base_location],
        endpoint=settings.s3_endpoint,
        endpoint_internal=settings.s3_endpoint_internal or settings.s3_endpoint,
        path_style_access=True,
        region=settings.s3_region,
        sts_unavailable=True,
    )
    return CreateCatalogRequest(
        catalog=PolarisCatalog(
            type="INTERNAL",
            name=settings.catalog_warehouse,
            properties=CatalogProperties(default_base_location=settings.catalog_base_location),
            storage_config_info=storage,
        )
    )


class TokenRejected(Exception):
    """The token endpoint answered, and refused these credentials."""


def fetch_token(
    http: httpx.Client, settings: PolarisInitSettings, client_id: str, client_secret: SecretStr
) -> str:
    """OAuth2 client_credentials against Polaris' token endpoint; raises NotReady or TokenRejected."""
    try:
        response = http.post(
            settings.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret.get_secret_value(),
                "scope": "PRINCIPAL_ROLE:ALL",
            },
            headers={settings.REALM_HEADER: settings.polaris_realm},
        )
    except httpx.HTTPError as exc:
        raise NotReady(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code == 200:
        token = response.json().get("access_token")
        if token:
            return str(token)
        raise NotReady("token endpoint answered 200 without an access_token")
    if response.status_code in (400, 401, 403):
        raise TokenRejected(f"HTTP {response.status_code}: {response.text[:300]}")
    raise NotReady(f"token endpoint answered HTTP {response.status_code}")


class PolarisInit:
    """One run of the init Job. ``run()`` returns every step's outcome, in order."""

    def __init__(self, settings: PolarisInitSettings, *, report: Reporter = print) -> None:
        self.settings = settings
        self.report = report
        self.http = httpx.Client(timeout=settings.request_timeout_seconds)
        self.steps: list[Step] = []
        self._api: PolarisDefaultApi | None = None
        self._iceberg: IcebergCatalogAPI | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    def _record(self, kind: str, name: str, outcome: str, detail: str = "") -> str:
        self.steps.append(Step(kind, name, outcome))
        self.report(f"{kind} {name}: {outcome}" + (f" ({detail})" if detail else ""))
        return outcome

    @property
    def api(self) -> PolarisDefaultApi:
        assert self._api is not None, "connect() first"
        return self._api

    @property
    def iceberg(self) -> IcebergCatalogAPI:
        assert self._iceberg is not None, "connect() first"
        return self._iceberg

    def _root_token(self) -> str:
        s = self.settings
        try:
            return fetch_token(self.http, s, s.polaris_root_client_id, s.polaris_root_client_secret)
        except TokenRejected as exc:
            # Also what a realm that is not bootstrapped yet answers: keep waiting, explain at the end.
            raise NotReady(f"root credentials rejected ({exc})") from exc

    def connect(self) -> None:
        """Wait for Polaris to hand the root principal a token, then build the SDK clients."""
        s = self.settings
        token = wait_until_ready(
            f"Polaris at {s.polaris_url} (realm {s.polaris_realm})",
            self._root_token,
            timeout=s.wait_timeout_seconds,
            interval=s.wait_interval_seconds,
            report=self.report,
            hint=(
                "If Polaris is up but rejects the root credentials: the realm must be bootstrapped "
                f"with the same id/secret as {s.env_name('polaris_root_client_id')} / "
                f"{s.env_name('polaris_root_client_secret')} (POLARIS_BOOTSTRAP_CREDENTIALS), and "
                f"{s.env_name('polaris_realm')} must name that realm. The Job's backoffLimit retries."
            ),
        )
        management = mgmt.ApiClient(
            mgmt.Configuration(host=s.management_url, access_token=token),
            header_name=s.REALM_HEADER,
            header_value=s.polaris_realm,
        )
        rest = iceberg_sdk.ApiClient(
            iceberg_sdk.Configuration(host=s.catalog_api_url, access_token=token),
            header_name=s.REALM_HEADER,
            header_value=s.polaris_realm,
        )
        self._api = PolarisDefaultApi(management)
        self._iceberg = IcebergCatalogAPI(rest)

    @contextlib.contextmanager
    def _calling(self, action: str) -> Iterator[None]:
        """Turn SDK and connection errors into a BootstrapError that says what failed and what to do."""
        try:
            yield
        except (mgmt.ApiException, iceberg_sdk.ApiException) as exc:
            hint = {
                400: "Polaris refused the request as invalid; check the values in the stack config.",
                401: "The root token was refused: check the realm and the root credentials.",
                403: "The root principal may not do this: is the realm's root principal the one configured?",
                404: "Something this step relies on is missing; a re-run recreates what it can.",
            }.get(exc.status or 0, "Polaris failed; see its log. The Job retries and a re-run is safe.")
            raise BootstrapError(f"{action} failed: HTTP {exc.status} {exc.body or exc.reason}. {hint}") from exc
        except (urllib3.exceptions.HTTPError, httpx.HTTPError) as exc:
            raise BootstrapError(
                f"{action} failed: lost the connection to Polaris ({exc}). The Job retries; a re-run is safe."
            ) from exc

    def _create(self, kind: str, name: str, create: Callable[[], object]) -> str:
        """Run a create call; 409 means it exists already."""
        try:
            with self._calling(f"creating {kind} {name}"):
                create()
        except BootstrapError as exc:
            cause = exc.__cause__
            if isinstance(cause, (mgmt.ApiException, iceberg_sdk.ApiException)) and cause.status == 409:
                return self._record(kind, name, "exists")
            raise
        return self._record(kind, name, "created")

    # -- steps ------------------------------------------------------------------------------------

    def ensure_catalog(self) -> None:
        s = self.settings
        request = catalog_request(s)
        outcome = self._create("catalog", s.catalog_warehouse, lambda: self.api.create_catalog(request))
        if outcome == "exists":
            self._warn_on_catalog_drift(request)

    def _warn_on_catalog_drift(self, wanted: CreateCatalogRequest) -> None:
        """An existing catalog is kept as it is; say so if it differs from the config."""
        with self._calling(f"reading catalog {self.settings.catalog_warehouse}"):
            current = self.api.get_catalog(self.settings.catalog_warehouse)
        want_storage = wanted.catalog.storage_config_info.to_dict()
        have_storage = current.storage_config_info.to_dict()
        differences = [
            f"{key}: has {have_storage.get(key)!r}, config wants {value!r}"
            for key, value in want_storage.items()
            if have_storage.get(key) != value
        ]
        want_base = wanted.catalog.properties.default_base_location
        if current.properties.default_base_location != want_base:
            differences.append(
                f"default-base-location: has {current.properties.default_base_location!r}, config wants {want_base!r}"
            )
        if differences:
            self.report(
                f"WARNING: catalog {self.settings.catalog_warehouse} exists with other settings, kept "
                f"unchanged: {'; '.join(differences)}. To apply the config, update the catalog with the "
                "Polaris CLI (polaris catalogs update) or drop and re-create it (this loses its tables)."
            )

    def ensure_namespaces(self) -> None:
        s = self.settings
        for namespace in s.namespaces:
            request = CreateNamespaceRequest(namespace=[namespace], properties={})
            self._create(
                "namespace",
                f"{s.catalog_warehouse}.{namespace}",
                lambda request=request: self.iceberg.create_namespace(s.catalog_warehouse, request),
            )

    def _credentials_work(self, spec: PrincipalSpec) -> bool:
        """Do the Secret's credentials authenticate as this principal? (No mutation.)"""
        try:
            fetch_token(self.http, self.settings, spec.client_id, spec.client_secret)
        except TokenRejected:
            return False
        except NotReady as exc:
            raise BootstrapError(
                f"checking the credentials of principal {spec.name} failed: {exc}. The Job retries."
            ) from exc
        with self._calling(f"reading principal {spec.name}"):
            principal = self.api.get_principal(spec.name)
        return principal.client_id == spec.client_id

    def ensure_principal(self, spec: PrincipalSpec) -> None:
        outcome = self._create(
            "principal",
            spec.name,
            lambda: self.api.create_principal(CreatePrincipalRequest(principal=Principal(name=spec.name))),
        )
        if outcome == "exists" and self._credentials_work(spec):
            self._record("credentials of", spec.name, "unchanged", "the Secret's credentials work")
            return
        reason = "new principal" if outcome == "created" else "the Secret's credentials did not authenticate"
        with self._calling(f"setting the credentials of principal {spec.name}"):
            result = self.api.reset_credentials(
                spec.name, ResetPrincipalRequest(client_id=spec.client_id, client_secret=spec.client_secret)
            )
        if result.credentials.client_id != spec.client_id or (
            result.credentials.client_secret is not None
            and result.credentials.client_secret.get_secret_value() != spec.client_secret.get_secret_value()
        ):
            raise BootstrapError(
                f"Polaris did not take the Secret's credentials for principal {spec.name} (it answered with "
                "other ones). This Polaris ignores caller-chosen credentials on reset; see docs/bootstrap.md."
            )
        if not self._credentials_work(spec):
            raise BootstrapError(
                f"the credentials just set on principal {spec.name} do not authenticate. Check Polaris' log."
            )
        self._record("credentials of", spec.name, "reset", f"set to the Secret's values: {reason}")

    def ensure_principal_role(self, spec: PrincipalSpec) -> None:
        request = CreatePrincipalRoleRequest(principal_role=PrincipalRole(name=spec.principal_role))
        self._create("principal role", spec.principal_role, lambda: self.api.create_principal_role(request))

    def ensure_catalog_role(self, spec: PrincipalSpec) -> None:
        catalog = self.settings.catalog_warehouse
        request = CreateCatalogRoleRequest(catalog_role=CatalogRole(name=spec.catalog_role))
        self._create(
            "catalog role", f"{catalog}/{spec.catalog_role}", lambda: self.api.create_catalog_role(catalog, request)
        )

    def ensure_grants(self, spec: PrincipalSpec) -> None:
        catalog = self.settings.catalog_warehouse
        role = f"{catalog}/{spec.catalog_role}"
        with self._calling(f"listing the grants of catalog role {role}"):
            current = self.api.list_grants_for_catalog_role(catalog, spec.catalog_role).grants
        have = {grant.privilege for grant in current if isinstance(grant, CatalogGrant)}
        for privilege in spec.privileges:
            if privilege in have:
                self._record("grant", f"{privilege.value} to {role}", "present")
                continue
            request = AddGrantRequest(grant=CatalogGrant(type="catalog", privilege=privilege))
            with self._calling(f"granting {privilege.value} to catalog role {role}"):
                self.api.add_grant_to_catalog_role(catalog, spec.catalog_role, request)
            self._record("grant", f"{privilege.value} to {role}", "added")
        extra = sorted(
            f"{getattr(g, 'type', '?')}:{getattr(g, 'privilege', '?')}"
            for g in current
            if not (isinstance(g, CatalogGrant) and g.privilege in spec.privileges)
        )
        if extra:
            # Least privilege: say so, but do not revoke what an operator may have granted on purpose.
            self.report(f"WARNING: catalog role {role} also holds grants not in the config: {', '.join(extra)}")

    def ensure_assignments(self, spec: PrincipalSpec) -> None:
        catalog = self.settings.catalog_warehouse
        with self._calling(f"listing the catalog roles of principal role {spec.principal_role}"):
            assigned = self.api.list_catalog_roles_for_principal_role(spec.principal_role, catalog).roles
        label = f"{catalog}/{spec.catalog_role} -> principal role {spec.principal_role}"
        if any(role.name == spec.catalog_role for role in assigned):
            self._record("assignment", label, "present")
        else:
            with self._calling(f"assigning {label}"):
                self.api.assign_catalog_role_to_principal_role(
                    spec.principal_role,
                    catalog,
                    GrantCatalogRoleRequest(catalog_role=CatalogRole(name=spec.catalog_role)),
                )
            self._record("assignment", label, "added")

        with self._calling(f"listing the principal roles of principal {spec.name}"):
            roles = self.api.list_principal_roles_assigned(spec.name).roles
        label = f"principal role {spec.principal_role} -> principal {spec.name}"
        if any(role.name == spec.principal_role for role in roles):
            self._record("assignment", label, "present")
        else:
            with self._calling(f"assigning {label}"):
                self.api.assign_principal_role(
                    spec.name, GrantPrincipalRoleRequest(principal_role=PrincipalRole(name=spec.principal_role))
                )
            self._record("assignment", label, "added")

    def run(self) -> list[Step]:
        specs = principal_specs(self.settings)
        try:
            self.connect()
            self.ensure_catalog()
            self.ensure_namespaces()
            for spec in specs:
                self.ensure_principal(spec)
            for spec in specs:
                self.ensure_principal_role(spec)
            for spec in specs:
                self.ensure_catalog_role(spec)
            for spec in specs:
                self.ensure_grants(spec)
            for spec in specs:
                self.ensure_assignments(spec)
        finally:
            self.http.close()
        changed = [step for step in self.steps if step.outcome in ("created", "added", "reset")]
        self.report(
            f"Polaris init done: {len(changed)} change(s), {len(self.steps) - len(changed)} already in place"
        )
        return self.steps


def init_polaris(settings: PolarisInitSettings, *, report: Reporter = print) -> list[Step]:
    """Wait for Polaris, then bring catalog, namespaces, principals, roles and grants to the config."""
    return PolarisInit(settings, report=report).run()
