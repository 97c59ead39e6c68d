"""Reading a cluster definition: its YAML documents with the line of every key, its kind (a KubeRay
manifest or a Ray cluster launcher config), and the problems found in it, each placed at
``FILE:LINE: dotted.path``."""

from __future__ import annotations

import dataclasses
from pathlib import Path as FilePath
from typing import Any, Iterable, Literal

import yaml

from skate.config.loader import Locator, Path, dotted, suggest
from skate.config.yamlio import parse_yaml, read_text
from skate.errors import SpecError

KUBERAY_KINDS = ("RayCluster", "RayJob", "RayService")
KUBERAY_API_VERSION = "ray.io/v1"

@dataclasses.dataclass(frozen=True)
class Document:
    """One parsed YAML document of a file, with the line of each of its keys."""

    data: Any
    locator: Locator
    first_line: int


@dataclasses.dataclass(frozen=True)
class ClusterFile:
    """A cluster definition read from disk: ``kind`` is ``"kuberay"`` or ``"launcher"``."""

    path: str
    kind: Literal["kuberay", "launcher"]
    documents: tuple[Document, ...]


def read_cluster_file(path: str | FilePath) -> ClusterFile:
    """Read a cluster definition and tell its kind, without checking its content.

    Raises:
        SpecError: for a missing or unreadable file, malformed YAML, an empty file, a document that
            is not a mapping, or several documents none of which is a KubeRay resource.
    """
    source = str(path)
    documents = tuple(doc for doc in _read_documents(path) if doc.data is not None)
    if not documents:
        raise SpecError([f"{source}: empty file: expected a Ray cluster launcher config or a KubeRay manifest"])
    problems = [f"{source}:{doc.first_line}: <root>: expected a mapping, got {show(doc.data)}"
                for doc in documents if not isinstance(doc.data, dict)]
    if problems:
        raise SpecError(problems)
    if any(is_kuberay(doc.data) for doc in documents):
        return ClusterFile(source, "kuberay", documents)
    if len(documents) > 1 or ("apiVersion" in documents[0].data and "kind" in documents[0].data):
        raise SpecError([f"{source}: a Kubernetes manifest without a KubeRay resource (apiVersion "
                         f"{KUBERAY_API_VERSION}, kind {', '.join(KUBERAY_KINDS)}); a Ray cluster launcher "
                         f"config is a single document without apiVersion"])
    return ClusterFile(source, "launcher", documents)


def _read_documents(path: str | FilePath) -> list[Document]:
    source = str(path)
    documents = []
    for first_line, chunk in _split_documents(read_text(path), source=source):
        data, locator = parse_yaml(chunk, source=source)
        documents.append(Document(data, locator, first_line))
    return documents


def _split_documents(text: str, *, source: str) -> list[tuple[int, str]]:
    """Each YAML document of ``text`` as (its 1-based first line, text that parses to it alone).

    A document's text is preceded by as many empty lines as come before it, so that the lines
    ``parse_yaml`` reports are the lines of the file.
    """
    chunks: list[tuple[int, str]] = []
    start = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.DocumentStartEvent):
                start = text.rfind("\n", 0, event.start_mark.index) + 1
            elif isinstance(event, yaml.DocumentEndEvent):
                line = text.count("\n", 0, start)
                chunks.append((line + 1, "\n" * line + text[start:event.end_mark.index]))
    except yaml.YAMLError as error:
        # Parsed alone, the document that broke says where and why with skate's usual message.
        line = text.count("\n", 0, start)
        parse_yaml("\n" * line + text[start:], source=source)
        raise SpecError([f"{source}: malformed YAML: {getattr(error, 'problem', None) or error}"]) from error
    return chunks


def is_kuberay(data: Any) -> bool:
    api_version = data.get("apiVersion") if isinstance(data, dict) else None
    return isinstance(api_version, str) and api_version.startswith("ray.io/")


def show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool) or value is None:
        return yaml_scalar(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Problems:
    """Collects the problems of one document, each placed at its file and line."""

    def __init__(self, document: Document) -> None:
        self.document = document
        self.lines: list[str] = []

    def add(self, path: Path, message: str) -> None:
        locator = self.document.locator
        where = locator.where(path)
        if path and path not in locator.lines:  # a missing key: point at the mapping that lacks it
            siblings = [line for key, line in locator.lines.items() if key[:-1] == path[:-1]]
            if siblings:
                where = f"{locator.source}:{min(siblings)}"
        if where == locator.source:
            where = f"{where}:{self.document.first_line}"
        self.lines.append(f"{where}: {dotted(path)}: {message}")

    def mapping(self, parent: dict[str, Any], key: str, path: Path, *, required: bool = True) -> dict[str, Any] | None:
        """``parent[key]`` when it is a mapping; else a problem (or nothing, for an absent optional key)."""
        value = parent.get(key)
        if isinstance(value, dict):
            return value
        if key in parent or required:
            self.add(path + (key,), "missing: expected a mapping" if key not in parent
                     else f"expected a mapping, got {show(value)}")
        return None

    def unknown_keys(self, value: dict[str, Any], path: Path, known: Iterable[str], what: str) -> None:
        for key in value:
            if key not in known:
                self.add(path + (str(key),), f"unknown key for {what}{suggest(str(key), known)}")


def yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)
