"""Per-install credentials: random on first synth, then stable.

They live in a git-ignored JSON file (``.floe/credentials.json``, mode 0600). A re-synth reads it
back, so re-applying ``dist/`` never rotates a password; a credential added by a newer version of
the stack is generated once and appended, never replacing an existing one. Nothing here has a
default value: a missing file means "generate", never "use a well-known password".
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from demo.bootstrap.identities import CLIENTS


def _token(n_bytes: int = 24) -> str:
    # URL-safe: these land in JDBC URLs, env vars and HTTP form bodies unescaped.
    return secrets.token_urlsafe(n_bytes)


def _client_id() -> str:
    # Polaris accepts caller-chosen principal credentials only in the shape it generates itself:
    # 16 hex characters for the id, 32 for the secret (PolarisServiceImpl.validateClientId/Secret).
    return secrets.token_hex(8)


def _client_secret() -> str:
    return secrets.token_hex(16)


class S3ClientKeys(BaseModel):
    """One client's object-store user (demo/bootstrap/identities.py). MinIO: the access key is the
    user name (3+ characters), the secret 8-40 characters."""

    model_config = ConfigDict(frozen=True)

    # 16 characters: within every length limit MinIO ever had for access keys (3-20).
    access_key_id: str = Field(default_factory=_client_id)
    secret_access_key: str = Field(default_factory=_token)


def _all_clients(value: dict | None = None) -> dict[str, S3ClientKeys]:
    keys = {client: S3ClientKeys.model_validate(v) for client, v in (value or {}).items()}
    for client in CLIENTS:
        keys.setdefault(client, S3ClientKeys())
    return keys


class Credentials(BaseModel):
    """Every secret value the stack uses. Each field generates itself when missing."""

    # extra="allow": a file written by a newer version keeps the keys this version does not know.
    model_config = ConfigDict(extra="allow", frozen=True)

    postgres_superuser_password: str = Field(default_factory=_token)
    # One password per application database user (dagster, marquez, polaris, ...).
    database_passwords: dict[str, str] = Field(default_factory=dict)
    minio_root_user: str = Field(default_factory=lambda: f"floe-{_client_id()}")
    minio_root_password: str = Field(default_factory=_token)
    polaris_root_client_id: str = Field(default_factory=_client_id)
    polaris_root_client_secret: str = Field(default_factory=_client_secret)
    # Signs Polaris' OAuth tokens (symmetric-key broker) when more than one replica serves them.
    polaris_token_broker_secret: str = Field(default_factory=lambda: _token(48))
    catalog_writer_client_id: str = Field(default_factory=_client_id)
    catalog_writer_client_secret: str = Field(default_factory=_client_secret)
    catalog_reader_client_id: str = Field(default_factory=_client_id)
    catalog_reader_client_secret: str = Field(default_factory=_client_secret)
    # Signs Cube API tokens (JWT, HS256): long and random.
    cube_api_secret: str = Field(default_factory=lambda: _token(48))
    cube_sql_password: str = Field(default_factory=_token)
    # One object-store user per client (polaris, dagster_pipeline, ...): a client added by a newer
    # version gets its keys once, the others keep theirs.
    s3_clients: dict[str, S3ClientKeys] = Field(default_factory=_all_clients)

    @field_validator("s3_clients", mode="before")
    @classmethod
    def _complete_s3_clients(cls, value: object) -> object:
        return _all_clients(value) if isinstance(value, dict) else value

    def with_databases(self, databases: tuple[str, ...]) -> Credentials:
        """A copy holding a password for each database, generating only the missing ones."""
        passwords = dict(self.database_passwords)
        for database in databases:
            passwords.setdefault(database, _token())
        return self.model_copy(update={"database_passwords": passwords})


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_create(path: Path, databases: tuple[str, ...]) -> Credentials:
    """The credentials in ``path``, completing (never replacing) missing entries and saving them."""
    existing: dict = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path} is not valid JSON ({exc}); restore it from a backup, or delete it to generate "
                "new credentials (the running stack then needs a fresh install)"
            ) from None
    credentials = Credentials.model_validate(existing).with_databases(databases)
    text = json.dumps(credentials.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        _write_private(path, text)
    return credentials
