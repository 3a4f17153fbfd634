"""Read a YAML file of the DAG bundle (or the price table) strictly: the one loader every config file uses.

Plain ``yaml.safe_load`` keeps the last of two equal keys without a word, so a pasted
``rows_cap:`` below the first one silently changes the plan. :func:`read_mapping` refuses
that, and every way a file can be wrong raises :class:`~warpspeed.exceptions.WarpSpeedConfigError`
naming the file, the line and what to do.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from warpspeed.exceptions import WarpSpeedConfigError


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping holds the same key twice (``line`` and ``first_line`` are 1-based)."""

    def __init__(self, key: Any, node: yaml.Node, first: yaml.Mark) -> None:
        super().__init__(None, None, f"found duplicate key {key!r}", node.start_mark)
        self.key = key
        self.line = node.start_mark.line + 1
        self.first_line = first.line + 1


class StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build the mapping after checking that no key is written twice in it (``<<`` merges may override)."""
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class refuses it with its own message
            if key in seen:
                raise DuplicateKeyError(key, key_node, seen[key])
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """Return the top-level mapping of a YAML file; an empty file is an empty mapping.

    :param what: what the file holds, for messages: ``workloads``, ``cluster profiles`` ...
    :raises WarpSpeedConfigError: the file is missing or unreadable, is not valid YAML, repeats a
        key in one mapping, or its top level is not a mapping.
    """
    path = Path(path)
    where = f"{what} file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WarpSpeedConfigError(
            f"{where} does not exist: create it or pass the path of an existing file"
        ) from None
    except UnicodeDecodeError as err:
        raise WarpSpeedConfigError(f"{where} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    except OSError as err:
        raise WarpSpeedConfigError(f"{where} cannot be read ({err.strerror}): pass a readable file") from None
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:  # no document: nothing but comments or blank lines
            return {}
        doc = loader.construct_document(node)
    except DuplicateKeyError as err:
        raise WarpSpeedConfigError(
            f"{where} is not valid YAML: line {err.line}: duplicate key {err.key!r} (first at line "
            f"{err.first_line}); keep one of the two (YAML would silently use the last)"
        ) from None
    except yaml.MarkedYAMLError as err:
        raise WarpSpeedConfigError(f"{where} is not valid YAML: {_describe(err)}; fix the syntax there") from None
    except yaml.YAMLError as err:
        raise WarpSpeedConfigError(f"{where} is not valid YAML: {err}") from None
    finally:
        loader.dispose()
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"the {type(doc).__name__} {doc!r}"
        raise WarpSpeedConfigError(
            f"{where}: line {node.start_mark.line + 1}: the top level is {kind}; it must be a mapping of keys "
            "('name: value' lines starting in column 1)"
        )
    return doc


def _describe(err: yaml.MarkedYAMLError) -> str:
    """Return ``line L, column C: <problem> (<context>)`` for a YAML syntax error."""
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    context = f" ({err.context})" if err.context else ""
    return f"{where}{err.problem or 'unreadable'}{context}"
