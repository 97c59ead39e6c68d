"""KubeRay's own CRD schemas (RayCluster, RayJob, RayService), shipped as one JSON file per supported
KubeRay minor release: ``kuberay-1.7.json`` and so on, made from the CRD files of the release's tag
in ray-project/kuberay by :mod:`skate.launch.kuberay_schema.generate`.

A file holds, for each kind, the ``openAPIV3Schema`` of the served ``v1`` version without its
descriptions; subtrees that repeat (the pod template of each group, the RayCluster spec inside a
RayJob) are kept once under ``definitions`` and pointed at with ``{"$ref": "#/definitions/NAME"}``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources
from typing import Any, Mapping

from skate.config.loader import Path

RELEASES: dict[str, str] = {"1.5": "v1.5.2", "1.6": "v1.6.2", "1.7": "v1.7.0"}
"""Each supported KubeRay minor release, oldest first, and the tag its CRDs are read from."""
SUPPORTED_VERSIONS = tuple(RELEASES)
DEFAULT_VERSION = "1.7"
"""The version manifests are checked against unless told otherwise: the newest supported."""
REF_PREFIX = "#/definitions/"

Schema = dict[str, Any]


def parse_version(text: str) -> str:
    """The supported KubeRay minor release that ``text`` names: ``1.7``, ``v1.7`` or ``v1.7.0``.

    Raises:
        ValueError: for a version skate has no schema of, naming those it has.
    """
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", text.strip())
    version = f"{match.group(1)}.{match.group(2)}" if match else text
    if version not in RELEASES:
        raise ValueError(f"unknown KubeRay version '{text}': skate knows the schemas of "
                         f"{', '.join(SUPPORTED_VERSIONS)} (default {DEFAULT_VERSION})")
    return version


@dataclasses.dataclass(frozen=True)
class KubeRaySchema:
    """The CRD schemas of one KubeRay release.

    Attributes:
        version: the minor release, e.g. ``"1.7"``.
        tag: the ray-project/kuberay tag the CRD files were read from, e.g. ``"v1.7.0"``.
        kinds: each kind's ``openAPIV3Schema``.
        definitions: the shared subtrees that ``$ref`` nodes point at.
    """

    version: str
    tag: str
    kinds: Mapping[str, Schema]
    definitions: Mapping[str, Schema]

    def resolve(self, node: Schema) -> Schema:
        """``node``, or the definition it points at when it is a ``$ref``."""
        ref = node.get("$ref")
        if ref is None:
            return node
        assert ref.startswith(REF_PREFIX), ref
        return self.definitions[ref[len(REF_PREFIX):]]

    def node_at(self, kind: str, path: Path) -> Schema | None:
        """The schema of the value at ``path`` (list indices as digits) of a ``kind`` manifest;
        ``None`` when the schema has no such field."""
        node = self.resolve(self.kinds[kind])
        for key in path:
            if node.get("type") == "array" and "items" in node and key.isdigit():
                node = node["items"]
            elif key in node.get("properties", {}):
                node = node["properties"][key]
            elif isinstance(node.get("additionalProperties"), dict):
                node = node["additionalProperties"]
            elif node.get("x-kubernetes-preserve-unknown-fields"):
                return {"x-kubernetes-preserve-unknown-fields": True}
            else:
                return None
            node = self.resolve(node)
        return node


def schema_file_name(version: str) -> str:
    return f"kuberay-{version}.json"


def load_schema(version: str = DEFAULT_VERSION) -> KubeRaySchema:
    """The shipped schemas of KubeRay ``version`` (one of :data:`SUPPORTED_VERSIONS`, or as
    :func:`parse_version` takes it).

    Raises:
        ValueError: for an unsupported version.
    """
    return _load(parse_version(version))


@functools.lru_cache(maxsize=None)
def _load(version: str) -> KubeRaySchema:
    text = resources.files(__name__).joinpath(schema_file_name(version)).read_text(encoding="utf-8")
    data = json.loads(text)
    schema = KubeRaySchema(version=data["kuberay"], tag=data["tag"], kinds=data["kinds"],
                           definitions=data["definitions"])
    assert schema.version == version, f"{schema_file_name(version)} holds KubeRay {schema.version}"
    return schema
