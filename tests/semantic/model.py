"""The Cube data model (demo/cube/model/*.yml) turned into the DuckDB SQL its members stand for,
so the tests can run every measure, dimension, join and pre-aggregation on the real marts.

Cube's DuckDB dialect wraps these expressions in its own SELECT; what can break on our side is the
member SQL itself (columns, tables, references), which is what this renders."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MODEL_DIR = Path(__file__).resolve().parents[2] / "demo" / "cube" / "model"
REFERENCE = re.compile(r"\{(\w+)\}")
AGGREGATES = {"sum": "sum({})", "avg": "avg({})", "min": "min({})", "max": "max({})", "count_distinct": "count(DISTINCT {})"}
GRANULARITIES = ("day", "week", "month")


def load_cubes() -> dict[str, dict]:
    cubes: dict[str, dict] = {}
    for path in sorted(MODEL_DIR.glob("*.yml")):
        for cube in yaml.safe_load(path.read_text())["cubes"]:
            assert cube["name"] not in cubes, f"cube {cube['name']} defined twice"
            cubes[cube["name"]] = cube
    return cubes


def _members(cube: dict, kind: str) -> dict[str, dict]:
    return {m["name"]: m for m in cube.get(kind, [])}


def render(cube: dict, sql: str, cubes: dict[str, dict]) -> str:
    """``sql`` with {CUBE}, {other_cube} and {member} references resolved (measures aggregated)."""
    measures, dimensions = _members(cube, "measures"), _members(cube, "dimensions")

    def resolve(match: re.Match[str]) -> str:
        name = match[1]
        if name == "CUBE" or name in cubes:
            return cube["name"] if name == "CUBE" else name
        if name in measures:
            return f"({measure_sql(cube, measures[name], cubes)})"
        if name in dimensions:
            return f"({dimension_sql(cube, dimensions[name], cubes)})"
        raise AssertionError(f"cube {cube['name']}: {{{name}}} names no member, cube or CUBE")

    return REFERENCE.sub(resolve, sql)


def dimension_sql(cube: dict, dimension: dict, cubes: dict[str, dict]) -> str:
    return render(cube, dimension["sql"], cubes)


def measure_sql(cube: dict, measure: dict, cubes: dict[str, dict]) -> str:
    kind = measure["type"]
    if kind == "count":
        return f"count({render(cube, measure['sql'], cubes)})" if "sql" in measure else "count(*)"
    if kind == "number":
        return render(cube, measure["sql"], cubes)
    if kind in AGGREGATES:
        return AGGREGATES[kind].format(render(cube, measure["sql"], cubes))
    raise AssertionError(f"cube {cube['name']}: measure type {kind} not covered by the tests")


def from_clause(cube: dict) -> str:
    return f"{cube['sql_table']} AS {cube['name']}"
