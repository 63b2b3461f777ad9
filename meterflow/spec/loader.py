"""Load a MeterPipeline manifest file and turn every validation failure into one line.

The file is the same YAML that ``kubectl apply -f`` takes; a file holding several documents
must contain exactly one MeterPipeline.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from meterflow.errors import SpecError
from meterflow.spec.durations import CEL_DURATION_PATTERN, DURATION_PATTERN
from meterflow.spec.model import DNS_LABEL_PATTERN, RULE_NAME_PATTERN, MeterPipeline


def load_manifest(path: str | Path) -> MeterPipeline:
    """Read, default and validate ``path``; raise :class:`SpecError` with a one-line message."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the manifest ({exc.strerror}); check the path given with -f") from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SpecError(f"{path}: not valid YAML{where}; fix the syntax") from None
    pipelines = [d for d in documents if isinstance(d, dict) and d.get("kind") == "MeterPipeline"]
    if len(pipelines) != 1:
        raise SpecError(f"{path}: expected one document of kind MeterPipeline, found {len(pipelines)}")
    return parse_manifest(pipelines[0], source=str(path))


def parse_manifest(document: dict[str, Any], source: str = "manifest") -> MeterPipeline:
    """Validate one manifest dict (from a file or from the API server)."""
    try:
        return MeterPipeline.model_validate(document)
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    """The first error as ``spec.windows.slide: <what is wrong and how to fix it>``."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _path(first["loc"])
    message = _message(first)
    # Cross-field validators name the field they blame first: "slide: 10m is larger than ...".
    blamed = _BLAMED_FIELD.match(message) if first["type"] == "value_error" else None
    if blamed:
        where = f"{where}.{blamed.group(1)}" if where else blamed.group(1)
        message = message[blamed.end() :]
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


_BLAMED_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9]*(\[[0-9]+\])?(\.[A-Za-z][A-Za-z0-9]*(\[[0-9]+\])?)*): ")

_PATTERN_HINTS = {
    DNS_LABEL_PATTERN: "is not a DNS-1123 label; use at most 63 lower-case letters, digits and '-', "
    "starting and ending with a letter or digit",
    DURATION_PATTERN: "is not a duration; write a whole number and a unit: ms, s, m, h or d (e.g. 30s, 7d)",
    CEL_DURATION_PATTERN: "is not a duration; write a whole number and a unit: ms, s, m or h (e.g. 30s, 5m)",
    RULE_NAME_PATTERN: "is not a rule name; use UPPER_SNAKE_CASE, e.g. HIGH_FLOW",
}


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "enum[", "literal[")) or part in {"str", "float", "int", "bool"}:
            continue
        else:
            out += f".{part}" if out else part
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    text: str = error["msg"]
    if kind == "value_error":
        return text.removeprefix("Value error, ")
    if kind == "missing":
        return "is required; add it"
    if kind == "extra_forbidden":
        return "is not a known field; check its spelling against `kubectl explain mp.spec`"
    if kind in {"enum", "literal_error"}:
        return f"{error.get('input')!r} is not allowed; {text[0].lower() + text[1:]}"
    if kind == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern", "")
        hint = _PATTERN_HINTS.get(pattern, f"does not match {pattern}")
        return f"{error.get('input')!r} {hint}"
    return f"{error.get('input')!r}: {text[0].lower() + text[1:]}"
