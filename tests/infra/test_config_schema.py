"""config/schema.json is generated from the model (python -m floe.config) and kept in sync."""

from __future__ import annotations

import json

from floe.config import load_config, to_schema
from tests.infra.conftest import REPO


def test_committed_schema_matches_the_model() -> None:
    committed = json.loads((REPO / "config" / "schema.json").read_text())
    assert committed == json.loads(json.dumps(to_schema())), "regenerate: python -m floe.config > config/schema.json"


def test_profile_declares_the_schema_and_loads() -> None:
    text = (REPO / "config" / "local.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=schema.json")
    assert load_config(REPO / "config" / "local.yaml", environ={}).namespace == "floe"


def test_schema_rejects_unknown_keys_everywhere() -> None:
    """additionalProperties: false on every object, as the model rejects unknown keys."""
    schema = to_schema()
    objects = [schema, *schema.get("$defs", {}).values()]
    assert all(o.get("additionalProperties") is False for o in objects if o.get("type") == "object" and "properties" in o)
