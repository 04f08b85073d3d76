"""JSON Schema export: one file per message type, for platform developers."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from gridguard.protocol.models import (
    COMMAND_MODELS,
    RESULT_MODELS,
    ListPost,
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
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"streaming_overdemand.{stem}"
        schema["title"] = f"streaming_overdemand {stem.replace('.', ' ')}"
        path = out_dir / f"streaming_overdemand.{stem}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
