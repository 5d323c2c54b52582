"""DuckDB on the lakehouse: offline extensions, the init SQL, connecting, bad credentials."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from pydantic import SecretStr

from demo.lakehouse.duckdb import EXTENSIONS, LakehouseConnectionError, connect, init_sql, install_extensions
from demo.lakehouse.settings import LakehouseSettings

FAKE = LakehouseSettings(
    catalog_uri="http://floe-polaris:8181/api/catalog",
    catalog_warehouse="floe",
    catalog_oauth2_uri="http://floe-polaris:8181/api/catalog/v1/oauth/tokens",
    catalog_client_id="client",
    catalog_client_secret="it's-secret",
    s3_endpoint="http://floe-minio:9000",
    s3_access_key_id="key",
    s3_secret_access_key="s3-secret",
)


def test_init_sql_loads_extensions_then_secrets_then_attach() -> None:
    statements = init_sql(FAKE, alias="lake")
    loads = [s for s in statements if s.startswith("LOAD")]
    assert loads == [f"LOAD {name}" for name in EXTENSIONS] == ["LOAD avro", "LOAD httpfs", "LOAD iceberg"]
    assert statements[-1] == (
        "ATTACH IF NOT EXISTS 'floe' AS lake (TYPE iceberg, SECRET lake_catalog, "
        "ENDPOINT 'http://floe-polaris:8181/api/catalog', ACCESS_DELEGATION_MODE 'none')"
    )
    catalog_secret = next(s for s in statements if "TYPE iceberg" in s and "SECRET lake_catalog" in s)
    assert "CLIENT_SECRET 'it''s-secret'" in catalog_secret  # quotes escaped
    assert "OAUTH2_SERVER_URI 'http://floe-polaris:8181/api/catalog/v1/oauth/tokens'" in catalog_secret
    s3_secret = next(s for s in statements if "TYPE s3" in s)
    assert "ENDPOINT 'floe-minio:9000'" in s3_secret and "USE_SSL false" in s3_secret
    assert "URL_STYLE 'path'" in s3_secret
    assert statements.index(catalog_secret) < len(statements) - 1
    assert "SET autoinstall_known_extensions = false" in statements
    # no extension directory in the settings -> DuckDB's default, nothing set
    assert not any("extension_directory" in s for s in statements)
    with_dir = init_sql(FAKE.model_copy(update={"duckdb_extension_directory": "/opt/ext"}))
    assert "SET extension_directory = '/opt/ext'" in with_dir


def test_extensions_install_offline_and_load_without_autoinstall(tmp_path: Path) -> None:
    directory = install_extensions(str(tmp_path / "ext"))
    installed = sorted(p.name for p in Path(directory).glob(f"v{duckdb.__version__}/*/*.duckdb_extension"))
    assert installed == sorted(f"{name}.duckdb_extension" for name in EXTENSIONS)
    con = duckdb.connect(config={"extension_directory": directory, "autoinstall_known_extensions": False})
    for name in EXTENSIONS:
        con.execute(f"LOAD {name}")
    loaded = {row[0] for row in con.sql("select extension_name from duckdb_extensions() where loaded").fetchall()}
    assert set(EXTENSIONS) <= loaded
    # an empty directory really has nothing: LOAD fails instead of downloading
    empty = duckdb.connect(
        config={"extension_directory": str(tmp_path / "empty"), "autoinstall_known_extensions": False}
    )
    with pytest.raises(duckdb.Error):
        empty.execute("LOAD iceberg")


def test_connect_attaches_the_catalog(settings: LakehouseSettings) -> None:
    con = connect(settings)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{settings.namespace_marts}")
    con.execute(f"CREATE TABLE lake.{settings.namespace_marts}.probe AS SELECT 42 AS answer")
    again = connect(settings)  # a second, independent session sees the committed table
    assert again.sql(f"SELECT answer FROM lake.{settings.namespace_marts}.probe").fetchall() == [(42,)]


def test_bad_credentials_fail_clearly(settings: LakehouseSettings) -> None:
    wrong = settings.model_copy(update={"catalog_client_secret": SecretStr("not-the-secret")})
    with pytest.raises(LakehouseConnectionError) as error:
        connect(wrong)
    message = str(error.value)
    assert settings.catalog_uri in message and settings.catalog_client_id in message
    assert "not-the-secret" not in message


def test_connect_loads_the_wheels_own_extension_files(settings: LakehouseSettings, tmp_path: Path) -> None:
    """connect() skips DuckDB's signature check only for the installed wheels' own files: a file in the
    extension directory (here a same-size stand-in no DuckDB could load) is never the one loaded."""
    directory = Path(install_extensions(str(tmp_path / "ext")))
    installed = next(directory.glob(f"v{duckdb.__version__}/*/iceberg.duckdb_extension"))
    size = installed.stat().st_size
    installed.unlink()  # a hard link to the wheel's file: replace the name, never write through it
    installed.write_bytes(b"\0" * size)
    with pytest.raises(duckdb.Error):  # the stand-in itself does not load
        duckdb.connect(config={"extension_directory": str(directory)}).execute("LOAD iceberg")
    con = connect(settings.model_copy(update={"duckdb_extension_directory": str(directory)}))
    (unsigned,) = con.sql("SELECT current_setting('allow_unsigned_extensions')").fetchone()  # type: ignore[misc]
    assert unsigned is True
    loaded = {row[0] for row in con.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert set(EXTENSIONS) <= loaded
    assert con.sql("SELECT type FROM duckdb_databases() WHERE database_name = 'lake'").fetchall() == [("iceberg",)]


def test_connect_as_cube_loads_the_installed_extensions_checked(settings: LakehouseSettings) -> None:
    """wheel_extensions=False (the bench's Cube-shaped queries): the signature check stays on, the
    extensions are loaded by name from the directory as Cube's initSql loads them, the catalog attached."""
    con = connect(settings, wheel_extensions=False)
    (unsigned,) = con.sql("SELECT current_setting('allow_unsigned_extensions')").fetchone()  # type: ignore[misc]
    assert unsigned is False
    loaded = {row[0] for row in con.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert set(EXTENSIONS) <= loaded
    assert con.sql("SELECT type FROM duckdb_databases() WHERE database_name = 'lake'").fetchall() == [("iceberg",)]
