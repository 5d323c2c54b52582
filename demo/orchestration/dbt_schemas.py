"""dbt's JSON schemas of its own config classes, built once per environment instead of once per process.

dbt checks ``dbt_project.yml``, ``profiles.yml``, the project flags and the adapter's credentials
against JSON schemas that mashumaro builds from dbt's dataclasses (``dbtClassMixin.json_schema``, an
``lru_cache`` per process). Building them is 0.3-1 s of a run process's first dbt invocation here (a
third of what dbt does before its first node); every later invocation in the process finds them
cached. They depend only on the installed packages that define them, so the parse baked into the
image (:func:`demo.orchestration.dbt.ensure_manifest`) saves them beside its manifest, keyed by those
packages' versions, and a new process hands them to dbt before its first invocation
(:func:`use_saved`). A file saved by other versions is ignored: dbt builds its own, as without it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

#: The packages whose code the schemas are built from (dbt's classes, the adapter's credentials,
#: the builder).
PACKAGES = ("dbt-core", "dbt-common", "dbt-adapters", "dbt-duckdb", "mashumaro")
FILE_NAME = "dbt_json_schemas.json"

_LOCK = threading.Lock()
#: Schemas by class (``module.qualname``): loaded from the file, then each one built in this process.
_schemas: dict[str, Any] = {}
_built: set[str] = set()
_installed = False


def environment_key() -> dict[str, str]:
    """What the schemas depend on: Python's version and the versions of :data:`PACKAGES`."""
    key = {"python": ".".join(map(str, sys.version_info[:2]))}
    for package in PACKAGES:
        key[package] = metadata.version(package)
    return key


def _class_name(cls: type) -> str | None:
    """``module.qualname``; None for a class defined inside a function (two could share a name)."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    return None if "<locals>" in name else name


def _install() -> None:
    """``dbtClassMixin.json_schema`` answers from :data:`_schemas` first, else builds (and keeps) the
    schema as dbt does."""
    global _installed
    if _installed:
        return
    from dbt_common.dataclass_schema import dbtClassMixin

    build = dbtClassMixin.json_schema  # dbt's own (lru-cached) classmethod, bound to the mixin

    def json_schema(cls: type) -> Any:
        name = _class_name(cls)
        if name is not None and name in _schemas:
            return _schemas[name]
        schema = build.__func__(cls)  # type: ignore[attr-defined]
        if name is not None:
            with _LOCK:
                _schemas.setdefault(name, schema)
                _built.add(name)
        return schema

    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[method-assign,assignment]
    _installed = True


def use_saved(path: Path) -> None:
    """Hand dbt the schemas saved at ``path`` (when saved by this environment's packages); from then on
    every schema dbt builds in this process is kept for :func:`save`. Once per process."""
    with _LOCK:
        if _installed:
            return
        with contextlib.suppress(OSError, ValueError):
            saved = orjson.loads(path.read_bytes())
            if isinstance(saved, dict) and saved.get("key") == environment_key():
                _schemas.update(saved.get("schemas") or {})
        _install()


def save(path: Path) -> bool:
    """Write the schemas known in this process (saved and built) to ``path`` (atomically) when this
    process built any the file there does not hold for this environment. False when it cannot be
    written (a read-only image folder: the image's own file, or none, stays)."""
    with _LOCK:
        schemas = dict(_schemas)
        built = set(_built)
    if not built:
        return True  # every schema came from the file: nothing new to keep
    key = environment_key()
    with contextlib.suppress(OSError, ValueError, AttributeError):
        saved = orjson.loads(path.read_bytes())
        if saved.get("key") == key and built <= set(saved.get("schemas") or {}):
            _saved(built)
            return True
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        partial.write_bytes(orjson.dumps({"key": key, "schemas": schemas}, option=orjson.OPT_SORT_KEYS))
        os.replace(partial, path)
        _saved(built)
    except (OSError, TypeError):  # TypeError: a schema orjson cannot write (then dbt keeps building it)
        with contextlib.suppress(OSError):
            partial.unlink()
        return False
    return True


def _saved(names: set[str]) -> None:
    """``names`` are in the file now: later invocations of this process have nothing new to save."""
    with _LOCK:
        _built.difference_update(names)
