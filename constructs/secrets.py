"""The stack's Secrets: what they are called, which keys they hold, and how containers read them.

Consumers never spell a Secret name or key: they take a :class:`SecretKey` from :class:`StackSecrets`
and call ``.env("VAR")``. With ``credentials.source: existing`` nothing is synthesized here and the
same names are expected to exist in the namespace (see README, "Bring your own Secrets").
"""

from __future__ import annotations

from dataclasses import dataclass


from constructs import k8s, plain
from constructs.base import env_secret, labels, secret
from demo.bootstrap.identities import CLIENTS, OPTIONAL_CLIENTS
from floe.config import StackConfig
from floe.credentials import Credentials


@dataclass(frozen=True)
class SecretKey:
    secret: str
    key: str

    def env(self, variable: str) -> k8s.EnvVar:
        return env_secret(variable, self.secret, self.key)


class StackSecrets:
    """Typed references to every Secret key the stack uses."""

    def __init__(self, config: StackConfig) -> None:
        n = config.names
        self._config = config
        self.postgres_user = SecretKey(n.postgres_secret, "username")
        self.postgres_password = SecretKey(n.postgres_secret, "password")
        # MinIO's root key: MinIO itself, the bucket Job and the reconcile, nobody else (the
        # `root-credentials` check). An external store: the declared key of the bucket step instead.
        self.minio_user = SecretKey(n.minio_secret, "access-key")
        self.minio_password = SecretKey(n.minio_secret, "secret-key")
        s3 = config.minio.external
        if s3 is not None:
            self.minio_user = SecretKey(s3.secrets.buckets.name, s3.secrets.buckets.access_key_id_key)
            self.minio_password = SecretKey(s3.secrets.buckets.name, s3.secrets.buckets.secret_access_key_key)
        # Every other pod: its client's own key (demo/bootstrap/identities.py).
        self._s3_clients: dict[str, tuple[SecretKey, SecretKey]] = {}
        # The backup client only with postgres.backup (no unused key in the other profiles).
        enabled = {"backup": config.postgres.backup is not None}
        for client in (c for c in CLIENTS if c not in OPTIONAL_CLIENTS or enabled[c]):
            if s3 is not None:  # an existing store: each client's key comes from the Secret the config declares
                declared = getattr(s3.secrets, client)
                self._s3_clients[client] = (
                    SecretKey(declared.name, declared.access_key_id_key),
                    SecretKey(declared.name, declared.secret_access_key_key),
                )
            else:
                name = n.s3_client_secret(client)
                self._s3_clients[client] = (SecretKey(name, "access-key"), SecretKey(name, "secret-key"))
        self.polaris_root_client_id = SecretKey(n.polaris_root_secret, "client-id")
        self.polaris_root_client_secret = SecretKey(n.polaris_root_secret, "client-secret")
        # "<realm>,<client id>,<secret>": the form POLARIS_BOOTSTRAP_CREDENTIALS takes.
        self.polaris_bootstrap_credentials = SecretKey(n.polaris_root_secret, "bootstrap-credentials")
        # The token broker's shared key, used only with polaris.replicas > 1 (constructs/polaris.py).
        self.polaris_token_broker_secret = SecretKey(n.polaris_root_secret, "token-broker-secret")
        self.catalog_writer_client_id = SecretKey(n.catalog_writer_secret, "client-id")
        self.catalog_writer_client_secret = SecretKey(n.catalog_writer_secret, "client-secret")
        self.catalog_reader_client_id = SecretKey(n.catalog_reader_secret, "client-id")
        self.catalog_reader_client_secret = SecretKey(n.catalog_reader_secret, "client-secret")
        self.cube_api_secret = SecretKey(n.cube_secret, "api-secret")
        self.cube_sql_user = SecretKey(n.cube_secret, "sql-user")
        self.cube_sql_password = SecretKey(n.cube_secret, "sql-password")

    def s3_access_key(self, client: str) -> SecretKey:
        return self._s3_clients[client][0]

    def s3_secret_key(self, client: str) -> SecretKey:
        return self._s3_clients[client][1]

    def s3_env(self, client: str, access_key_variable: str, secret_key_variable: str) -> list[k8s.EnvVar]:
        """A client's S3 key pair as two env vars."""
        return [self.s3_access_key(client).env(access_key_variable), self.s3_secret_key(client).env(secret_key_variable)]

    def database_user(self, database: str) -> SecretKey:
        external = self._config.postgres.external
        if external is not None:
            secret = external.databases[database].secret
            return SecretKey(secret.name, secret.username_key)
        return SecretKey(self._config.names.database_secret(database), "username")

    def database_password(self, database: str) -> SecretKey:
        external = self._config.postgres.external
        if external is not None:
            secret = external.databases[database].secret
            return SecretKey(secret.name, secret.password_key)
        return SecretKey(self._config.names.database_secret(database), "password")

    def declared_external(self) -> set[str]:
        """Secrets the config declares for external services (postgres.external, minio.external):
        they exist in the namespace already and are never synthesized."""
        found = {self.database_user(db).secret for db in self._config.postgres.databases} if self._config.postgres.external else set()
        if self._config.minio.external:
            found |= {keys[0].secret for keys in self._s3_clients.values()} | {self.minio_user.secret}
        return found

    def names(self) -> set[str]:
        """Every Secret name the stack references (what `credentials.source: existing` expects)."""
        fixed = {ref.secret for ref in vars(self).values() if isinstance(ref, SecretKey)}
        if self._config.postgres.external is not None:  # no in-cluster server, no superuser
            fixed.discard(self.postgres_user.secret)
        fixed |= {keys[0].secret for keys in self._s3_clients.values()}
        return fixed | {self.database_user(db).secret for db in self._config.postgres.databases}

    def contents(self, credentials: Credentials) -> dict[str, dict[str, str]]:
        """Secret name -> key -> value, for synthesis."""
        c, realm = credentials, self._config.polaris.realm
        values: dict[SecretKey, str] = {
            self.postgres_user: "postgres",
            self.postgres_password: c.postgres_superuser_password,
            self.minio_user: c.minio_root_user,
            self.minio_password: c.minio_root_password,
            self.polaris_root_client_id: c.polaris_root_client_id,
            self.polaris_root_client_secret: c.polaris_root_client_secret,
            self.polaris_bootstrap_credentials: f"{realm},{c.polaris_root_client_id},{c.polaris_root_client_secret}",
            self.catalog_writer_client_id: c.catalog_writer_client_id,
            self.catalog_writer_client_secret: c.catalog_writer_client_secret,
            self.catalog_reader_client_id: c.catalog_reader_client_id,
            self.catalog_reader_client_secret: c.catalog_reader_client_secret,
            self.cube_api_secret: c.cube_api_secret,
            self.cube_sql_user: self._config.cube.sql_user,
            self.cube_sql_password: c.cube_sql_password,
        }
        if self._config.polaris.replicas > 1:
            values[self.polaris_token_broker_secret] = c.polaris_token_broker_secret
        for client, keys in self._s3_clients.items():
            values[keys[0]] = c.s3_clients[client].access_key_id
            values[keys[1]] = c.s3_clients[client].secret_access_key
        for database in self._config.postgres.databases:
            values[self.database_user(database)] = database
            values[self.database_password(database)] = c.database_passwords[database]
        grouped: dict[str, dict[str, str]] = {}
        skip = self.declared_external() | ({self.postgres_user.secret} if self._config.postgres.external else set())
        for ref, value in values.items():
            if ref.secret not in skip:
                grouped.setdefault(ref.secret, {})[ref.key] = value
        return grouped


class StackSecretObjects(plain.PlainConstruct):
    """The Secret objects themselves (only when credentials are generated by us)."""

    def __init__(self, scope: plain.Scope, id: str, *, config: StackConfig, credentials: Credentials, layer: str) -> None:
        super().__init__(scope, id)
        for name, data in StackSecrets(config).contents(credentials).items():
            secret(self, name, name=name, lbls=labels(name, component="credentials", layer=layer), data=data)
