"""JSON Schema export: one file per message type, for platform developers.

Every property carries a description and, where it has one, its unit (``x-unit``, and in the
text), from :mod:`.descriptions`; ``type`` is the one constant the topic allows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gridguard.protocol.descriptions import field_doc
from gridguard.protocol.models import (
    COMMAND_MODELS,
    RESULT_MODELS,
    ListPost,
    message_type,
)


def schema_models() -> dict[str, type[BaseModel]]:
    """File stem -> model, e.g. ``create.command`` -> CreateCommand."""
    models: dict[str, type[BaseModel]] = {"list.post": ListPost}
    for op, model in COMMAND_MODELS.items():
        models[f"{op}.command"] = model
    for op, result in RESULT_MODELS.items():
        models[f"{op}.result"] = result
    return models


def write_schemas(out_dir: Path) -> list[Path]:
    """Write ``streaming_overdemand.{op}.{dir}.schema.json`` files; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, model in sorted(schema_models().items()):
        schema = described(model.model_json_schema(mode="validation"), model.__name__)
        schema["properties"]["type"]["const"] = message_type(stem.split(".")[0])
        schema["$id"] = f"streaming_overdemand.{stem}"
        schema["title"] = f"streaming_overdemand {stem.replace('.', ' ')}"
        path = out_dir / f"streaming_overdemand.{stem}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _describe(properties: dict[str, Any], model: str) -> None:
    for name, prop in properties.items():
        doc = field_doc(model, name)
        if doc is None:
            continue
        prop["description"] = f"{doc.description} ({doc.unit})" if doc.unit else doc.description
        if doc.unit:
            prop["x-unit"] = doc.unit


def described(schema: dict[str, Any], model: str) -> dict[str, Any]:
    """The schema with a description (and unit) on every property it has a text for."""
    _describe(schema.get("properties", {}), model)
    for name, definition in schema.get("$defs", {}).items():
        _describe(definition.get("properties", {}), name)
    return schema
