"""Install DuckDB extensions offline from the duckdb-extension-* wheels into a chosen directory.

Each ``duckdb-extension-X`` wheel ships ``duckdb_extension_X/extensions/v<duckdb>/X.duckdb_extension``.
``FORCE INSTALL '<that file>'`` copies it into ``<directory>/v<duckdb>/<platform>/``; afterwards any
DuckDB of the same version with ``extension_directory`` set there can ``LOAD X`` by name, without
network access. Used by the Dockerfile at build time (``python -m demo.bootstrap duckdb-extensions``).
"""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

from demo.lakehouse.extensions import EXTENSIONS



def extension_file(name: str) -> Path:
    """The extension binary shipped by the installed ``duckdb-extension-<name>`` wheel."""
    package = importlib.import_module(f"duckdb_extension_{name}")
    version = duckdb.__version__
    path = Path(package.__file__).parent / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: duckdb-extension-{name} must have the same version as duckdb ({version})"
        )
    return path


def install_extensions(directory: Path, names: tuple[str, ...] = EXTENSIONS) -> list[Path]:
    """Install ``names`` into ``directory``; returns the installed files. Idempotent (FORCE)."""
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"extension_directory": str(directory), "autoinstall_known_extensions": False})
    try:
        for name in names:
            source = str(extension_file(name)).replace("'", "''")
            con.execute(f"FORCE INSTALL '{source}'")
    finally:
        con.close()
    return sorted(directory.rglob("*.duckdb_extension"))
