"""DuckDB on the lakehouse: offline extensions, the SQL that attaches the Iceberg REST catalog, a
connection helper — and the dbt-duckdb plugin that does the same inside dbt.

The SQL is kept as plain strings (:func:`init_sql`) because Cube's DuckDB driver takes the same
statements as its ``initSql``; Python, dbt and Cube therefore attach the catalog identically:

* ``LOAD avro`` / ``httpfs`` / ``iceberg`` (never auto-installed: the files come from the
  ``duckdb-extension-*`` wheels, see :func:`install_extensions`; avro before iceberg; the pipeline's
  own connections load them straight from the wheels first, see :func:`load_wheel_extensions`);
* a ``TYPE iceberg`` secret (OAuth2 client credentials) and a ``TYPE s3`` secret — neither Polaris
  (``stsUnavailable``) nor SeaweedFS vends storage credentials, so ``ACCESS_DELEGATION_MODE 'none'``;
* ``ATTACH '<warehouse>' AS lake (TYPE iceberg, ...)``.

Nothing here is specific to SeaweedFS or Polaris: both are only a :class:`LakehouseSettings`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb

from demo.lakehouse.extensions import EXTENSIONS
from demo.lakehouse.settings import DbtSettings, LakehouseSettings

#: The database name under which the dbt plugin attaches dbt's local DuckDB file (the staging
#: views): the profile's ``local_database`` and the models' ``+database`` in dbt_project.yml.
DBT_LOCAL_DATABASE = "floe_dbt"


class LakehouseConnectionError(RuntimeError):
    """The catalog could not be attached (down, wrong credentials, wrong warehouse)."""


def _sql_str(value: str) -> str:
    """A SQL string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def _wheel_extension_file(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped by the ``duckdb-extension-<name>`` wheel."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the duckdb-extension-{name} package is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    found = package_dir / "extensions" / duckdb.__version__ / f"{name}.duckdb_extension"
    if not found.exists():
        found = package_dir / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not found.exists():
        raise FileNotFoundError(
            f"duckdb-extension-{name} has no file for DuckDB {duckdb.__version__} under {package_dir}"
        )
    return found


def default_extension_directory() -> str:
    """DuckDB's own default (``~/.duckdb/extensions``), used when the settings name none."""
    return str(Path.home() / ".duckdb" / "extensions")


def _platform() -> str:
    """DuckDB's platform name (``linux_amd64``, ...): the folder under ``v<version>/`` it loads from."""
    con = duckdb.connect()
    try:
        (platform,) = con.execute("PRAGMA platform").fetchone()  # type: ignore[misc]
    finally:
        con.close()
    return str(platform)


def install_extensions(extension_directory: str | None = None) -> str:
    """Install avro, httpfs and iceberg from the ``duckdb-extension-*`` wheels (no network).

    Installs into ``extension_directory`` (default: DuckDB's ``~/.duckdb/extensions``, or a folder in
    the temp dir when the home directory is not writable) and returns that directory — pass it as
    the connection's ``extension_directory`` (as :func:`connect` and the dbt plugin do). A file
    already installed with the same size is left alone, so calling this on every start costs a few
    stat calls. Afterwards ``LOAD <name>`` works offline in any DuckDB of the same version that uses
    this directory (Cube embeds the same 1.5.5).

    Each file is hard-linked from the wheel into DuckDB's layout (``v<version>/<platform>/<name>
    .duckdb_extension``) where the file system allows it: the same bytes, which DuckDB verifies when
    it loads them, without copying 84 MB into every new data folder (``FORCE INSTALL`` of the three
    took 1-1.5 s here, the first dbt build's largest item in a new folder). Otherwise (another file
    system, no permission) ``FORCE INSTALL '<file>'`` copies it, as before.
    """
    directory = extension_directory or default_extension_directory()
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError:
        if extension_directory:
            raise
        # No usable home directory (e.g. a container user without one): fall back to the temp dir.
        directory = str(Path(tempfile.gettempdir()) / "floe-duckdb-extensions")
        Path(directory).mkdir(parents=True, exist_ok=True)
    missing = []
    for name in EXTENSIONS:
        source = _wheel_extension_file(name)
        installed = list(Path(directory).glob(f"v{duckdb.__version__}/*/{name}.duckdb_extension"))
        if not (installed and all(p.stat().st_size == source.stat().st_size for p in installed)):
            missing.append((name, source))
    if not missing:
        return directory
    platform_dir = Path(directory) / f"v{duckdb.__version__}" / _platform()
    copy = []
    for name, source in missing:
        target = platform_dir / f"{name}.duckdb_extension"
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            platform_dir.mkdir(parents=True, exist_ok=True)
            os.link(source, partial)
            os.replace(partial, target)  # atomic: a concurrent LOAD sees the old file or the new one
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()
            copy.append(source)
    if copy:
        con = duckdb.connect(config={"extension_directory": directory, "autoinstall_known_extensions": False})
        try:
            for source in copy:
                con.execute(f"FORCE INSTALL {_sql_str(str(source))}")
        finally:
            con.close()
    return directory


def connection_config(extension_directory: str, *, wheel_extensions: bool = True) -> dict[str, Any]:
    """DuckDB's config for the pipeline's own connections (:func:`connect`, dbt's plugin): the
    extension directory, nothing auto-installed, and (``wheel_extensions``) the extensions' signature
    check left to the package manager (see :func:`load_wheel_extensions`). Without it, the config
    Cube's DuckDB runs with: the extensions loaded by name, checked."""
    config: dict[str, Any] = {"extension_directory": extension_directory, "autoinstall_known_extensions": False}
    if wheel_extensions:
        config["allow_unsigned_extensions"] = True
    return config


def load_wheel_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """``LOAD`` each extension from the ``duckdb-extension-*`` wheel's own file in this environment.

    DuckDB verifies an extension's signature on every ``LOAD`` into a new database instance: a
    SHA-256 over the file, 84 MB for the three, 0.3-0.5 s of every new connection here (with the
    check off: ~0.01 s). These files are the installed packages' own, put there by uv from the
    hash-pinned ``uv.lock``, beside DuckDB's own native module, which Python loads unverified; the
    check adds nothing to that, so these connections skip it (``allow_unsigned_extensions``, set by
    :func:`connection_config`) and load only these files. The later ``LOAD <name>`` of
    :func:`init_sql` finds them loaded. Cube, which has no wheels, loads its copies by name, checked.
    """
    for name in EXTENSIONS:
        con.execute(f"LOAD {_sql_str(str(_wheel_extension_file(name)))}")


def init_sql(settings: LakehouseSettings, *, alias: str = "lake") -> list[str]:
    """The statements that make the catalog available as database ``alias`` in a DuckDB session.

    Order matters: settings, extensions (avro before iceberg), secrets, ATTACH. Secrets are named
    ``<alias>_catalog`` and ``<alias>_s3`` and are in-memory (``CREATE OR REPLACE SECRET``), so the
    statements can be re-run on the same connection. The extensions must already be installed
    (:func:`install_extensions`) in the session's ``extension_directory``.
    """
    statements: list[str] = ["SET autoinstall_known_extensions = false"]
    # Sized to the container by the constructs (FLOE_DUCKDB_*): memory, and where to spill past it.
    for setting, value in (
        ("memory_limit", settings.duckdb_memory_limit),
        ("temp_directory", settings.duckdb_temp_directory),
        ("max_temp_directory_size", settings.duckdb_max_temp_directory_size),
    ):
        if value:
            statements.append(f"SET {setting} = {_sql_str(value)}")
    if settings.duckdb_extension_directory:
        statements.append(f"SET extension_directory = {_sql_str(settings.duckdb_extension_directory)}")
    statements += [f"LOAD {name}" for name in EXTENSIONS]
    # Iceberg secret options: https://duckdb.org/docs/stable/core_extensions/iceberg/iceberg_rest_catalogs
    statements.append(
        f"CREATE OR REPLACE SECRET {alias}_catalog (TYPE iceberg, "
        f"CLIENT_ID {_sql_str(settings.catalog_client_id)}, "
        f"CLIENT_SECRET {_sql_str(settings.catalog_client_secret.get_secret_value())}, "
        f"OAUTH2_SERVER_URI {_sql_str(settings.catalog_oauth2_uri)}, "
        f"OAUTH2_SCOPE {_sql_str(settings.catalog_scope)})"
    )
    statements.append(
        f"CREATE OR REPLACE SECRET {alias}_s3 (TYPE s3, "
        f"KEY_ID {_sql_str(settings.s3_access_key_id)}, "
        f"SECRET {_sql_str(settings.s3_secret_access_key.get_secret_value())}, "
        f"ENDPOINT {_sql_str(settings.s3_endpoint_hostport)}, "
        f"URL_STYLE 'path', USE_SSL {'true' if settings.s3_use_ssl else 'false'}, "
        f"REGION {_sql_str(settings.s3_region)})"
    )
    statements.append(
        f"ATTACH IF NOT EXISTS {_sql_str(settings.catalog_warehouse)} AS {alias} (TYPE iceberg, "
        f"SECRET {alias}_catalog, ENDPOINT {_sql_str(settings.catalog_uri)}, "
        "ACCESS_DELEGATION_MODE 'none')"
    )
    return statements


def run_init_sql(con: duckdb.DuckDBPyConnection, settings: LakehouseSettings, *, alias: str = "lake") -> None:
    """Run :func:`init_sql` on ``con``; a failed token request or ATTACH becomes a
    :class:`LakehouseConnectionError` naming the endpoint and client id (never the secret)."""
    for statement in init_sql(settings, alias=alias):
        try:
            con.execute(statement)
        except duckdb.Error as exc:
            # The iceberg secret fetches its OAuth2 token when created; ATTACH then reads the catalog.
            if statement.startswith("ATTACH") or f"SECRET {alias}_catalog (TYPE iceberg" in statement:
                raise LakehouseConnectionError(
                    f"cannot attach Iceberg catalog {settings.catalog_warehouse!r} at {settings.catalog_uri} "
                    f"(OAuth2 client {settings.catalog_client_id!r} via {settings.catalog_oauth2_uri}): {exc}"
                ) from exc
            raise


def connect(
    settings: LakehouseSettings, *, alias: str = "lake", database: str = ":memory:", wheel_extensions: bool = True
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the catalog attached as ``alias`` (extensions installed first).

    ``wheel_extensions``: load the wheels' extension files unchecked (:func:`load_wheel_extensions`),
    as the pipeline does; False sets the connection up as Cube's DuckDB driver does (extensions
    loaded by name by :func:`init_sql`, signatures checked).

    Raises :class:`LakehouseConnectionError` with the endpoint and client id when the catalog is
    unreachable or rejects the credentials.
    """
    directory = install_extensions(settings.duckdb_extension_directory)
    con = duckdb.connect(database, config=connection_config(directory, wheel_extensions=wheel_extensions))
    try:
        if wheel_extensions:
            load_wheel_extensions(con)
        run_init_sql(con, settings, alias=alias)
    except BaseException:
        con.close()
        raise
    return con


def _make_dbt_plugin() -> type:
    """The dbt-duckdb plugin class (built on first use so importing this module never imports dbt)."""
    from dbt.adapters.duckdb.plugins import BasePlugin

    class Plugin(BasePlugin):  # type: ignore[misc,valid-type]
        """dbt-duckdb plugin: offline extensions + :func:`init_sql` on dbt's DuckDB connection, and
        dbt's local DuckDB file attached from ``FLOE_DBT_DUCKDB_PATH``.

        Profile: ``plugins: [{module: demo.lakehouse.duckdb, config: {alias: lake, local_database:
        floe_dbt}}]`` with ``path: ":memory:"``. Hooks are dbt-duckdb 1.11's
        ``BasePlugin.update_connection_config`` (runs before ``duckdb.connect``) and
        ``configure_connection`` (runs after, before the profile's own ``attach``).

        Why the plugin and not the profile: dbt's partial-parse check hashes the profile's connection
        values (``path``, ``attach``, the plugins' ``config``, ...) but not what a plugin reads from the
        environment when the connection opens. The file's path differs per pod or data folder; in the
        profile it would make every first build in a new one parse the project from scratch.
        """

        def initialize(self, plugin_config: dict[str, Any]) -> None:
            self.alias = str(plugin_config.get("alias", "lake"))
            local_database = plugin_config.get("local_database")
            self.local_database = str(local_database) if local_database else None
            self.local_path = DbtSettings().duckdb_path
            self.settings = LakehouseSettings()  # FLOE_* from the environment, like everywhere else
            self.extension_directory = install_extensions(self.settings.duckdb_extension_directory)

        def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
            config.update(connection_config(self.extension_directory))
            if self.local_database and not self.settings.duckdb_temp_directory:
                # Where DuckDB spills when no FLOE_DUCKDB_TEMP_DIRECTORY says: beside the local file,
                # as with a file database (an in-memory one would spill to `.tmp` in the working dir).
                config["temp_directory"] = f"{self.local_path}.tmp"

        def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
            if self.local_database:
                Path(self.local_path).parent.mkdir(parents=True, exist_ok=True)
                conn.execute(f"ATTACH IF NOT EXISTS {_sql_str(self.local_path)} AS {self.local_database}")
            load_wheel_extensions(conn)
            run_init_sql(conn, self.settings, alias=self.alias)

    return Plugin


def __getattr__(name: str) -> Any:
    # dbt-duckdb looks up `Plugin` on the module named in the profile (BasePlugin.create).
    if name == "Plugin":
        plugin = _make_dbt_plugin()
        globals()["Plugin"] = plugin
        return plugin
    raise AttributeError(name)


__all__ = [
    "DBT_LOCAL_DATABASE",
    "EXTENSIONS",
    "LakehouseConnectionError",
    "connect",
    "connection_config",
    "default_extension_directory",
    "init_sql",
    "install_extensions",
    "load_wheel_extensions",
    "run_init_sql",
]
