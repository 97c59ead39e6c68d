"""Make the shipped KubeRay schemas from KubeRay's released CRD files (a tool for skate's developers).

    git clone https://github.com/ray-project/kuberay /tmp/kuberay    # any clone that has the tags
    python -m skate.launch.kuberay_schema.generate --kuberay-repo /tmp/kuberay
    python -m skate.launch.kuberay_schema.generate --kuberay-repo /tmp/kuberay --check

For each release in :data:`skate.launch.kuberay_schema.RELEASES` it reads
``ray-operator/config/crd/bases/ray.io_{rayclusters,rayjobs,rayservices}.yaml`` at the release's tag
(``git show TAG:PATH``; the clone may be bare) and writes ``kuberay-VERSION.json`` next to this file;
``--check`` writes nothing and exits 1 when a shipped file differs from what it would write.

To support a new KubeRay release: add it to ``RELEASES`` (and move ``DEFAULT_VERSION``), run this,
then run ``tests/launch/test_kuberay.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path as FilePath
from typing import Any, Callable, Mapping, Sequence

import yaml

from skate.launch.clusterfile import KUBERAY_KINDS
from skate.launch.kuberay_schema import REF_PREFIX, RELEASES, Schema, schema_file_name

CRD_FILES = {kind: f"ray-operator/config/crd/bases/ray.io_{kind.lower()}s.yaml" for kind in KUBERAY_KINDS}
SERVED_VERSION = "v1"
MIN_SHARED_CHARS = 400
"""A subtree that repeats is kept once when its JSON is at least this long; smaller ones are
cheaper inline than behind a ``$ref``."""
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf")
Shared = tuple[dict[str, Schema], dict[str, Schema]]
"""Schemas whose repeated subtrees are ``$ref``s, and the definitions these point at."""


def compact_crd(crd: Mapping[str, Any]) -> Schema:
    """The ``openAPIV3Schema`` of the served ``v1`` version of a CRD, without its descriptions.

    Raises:
        ValueError: when the CRD does not serve ``v1`` with a schema.
    """
    for version in crd.get("spec", {}).get("versions", []):
        if version.get("name") == SERVED_VERSION and version.get("served"):
            return strip_descriptions(version["schema"]["openAPIV3Schema"])
    name = crd.get("metadata", {}).get("name", "the CRD")
    raise ValueError(f"{name} does not serve {SERVED_VERSION}")


def strip_descriptions(node: Schema) -> Schema:
    """``node`` without the ``description`` of it and of every schema inside it (a property named
    ``description``, an enum value or a default that holds one stay)."""
    return {key: value for key, value in map_children(node, lambda child, _: strip_descriptions(child)).items()
            if key != "description"}


def map_children(node: Schema, visit: Callable[[Schema, str], Schema]) -> Schema:
    """A copy of ``node`` whose inner schemas are replaced by ``visit(child, step)``, ``step``
    naming the child: a property's name, ``[]`` for list items, ``{}`` for map values."""
    out: Schema = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: visit(child, name) for name, child in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = visit(value, {"items": "[]", "additionalProperties": "{}"}.get(key, key))
        elif key in _SCHEMA_LISTS:
            out[key] = [visit(child, f"{key}{index}") for index, child in enumerate(value)]
        else:
            out[key] = value
    return out


def share_subtrees(kinds: Mapping[str, Schema]) -> Shared:
    """The kinds' schemas with each subtree that repeats replaced by a ``$ref``, and the definitions
    the refs point at, each named after the path where it first appears."""
    texts: dict[int, str] = {}  # by id: every node asked for is part of ``kinds``, alive until the end

    def text(node: Schema) -> str:
        if id(node) not in texts:
            texts[id(node)] = json.dumps(node, sort_keys=True, separators=(",", ":"))
        return texts[id(node)]

    seen: dict[str, tuple[int, str]] = {}

    def count(node: Schema, path: str) -> Schema:
        times, first = seen.get(text(node), (0, path))
        seen[text(node)] = (times + 1, first)
        map_children(node, lambda child, step: count(child, path + step if step in ("[]", "{}") else f"{path}.{step}"))
        return node

    for kind, schema in kinds.items():
        count(schema, kind)
    shared = {body: first for body, (times, first) in seen.items() if times > 1 and len(body) >= MIN_SHARED_CHARS}
    definitions: dict[str, Schema] = {}

    def rebuild(node: Schema, *, top: bool = False) -> Schema:
        name = None if top else shared.get(text(node))
        if name is None:
            return map_children(node, lambda child, _: rebuild(child))
        if name not in definitions:
            definitions[name] = rebuild(node, top=True)
        return {"$ref": REF_PREFIX + name}

    out = {kind: rebuild(schema, top=True) for kind, schema in kinds.items()}
    return _inline_single_use(out, definitions)


def _inline_single_use(kinds: dict[str, Schema], definitions: dict[str, Schema]) -> Shared:
    """Put back in place the definitions referred to once (shared only inside another shared one)."""
    uses: dict[str, int] = {}

    def tally(node: Schema) -> Schema:
        if "$ref" in node:
            uses[node["$ref"]] = uses.get(node["$ref"], 0) + 1
        return map_children(node, lambda child, _: tally(child))

    for node in (*kinds.values(), *definitions.values()):
        tally(node)
    once = {ref[len(REF_PREFIX):] for ref, times in uses.items() if times == 1}

    def inline(node: Schema) -> Schema:
        name = node["$ref"][len(REF_PREFIX):] if "$ref" in node else None
        if name in once:
            return inline(definitions[name])
        return map_children(node, lambda child, _: inline(child))

    return ({kind: inline(node) for kind, node in kinds.items()},
            {name: inline(node) for name, node in definitions.items() if name not in once})


def schema_document(version: str, tag: str, crds: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``kuberay-VERSION.json`` holds, from each kind's CRD (parsed YAML)."""
    kinds, definitions = share_subtrees({kind: compact_crd(crds[kind]) for kind in KUBERAY_KINDS})
    return {"kuberay": version, "tag": tag, "source": f"github.com/ray-project/kuberay@{tag}: "
            + ", ".join(CRD_FILES[kind] for kind in KUBERAY_KINDS),
            "kinds": kinds, "definitions": definitions}


def dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n"


def read_crds(repo: str, tag: str) -> dict[str, Any]:
    """Each kind's CRD, parsed, as KubeRay released it at ``tag``.

    Raises:
        ValueError: when git cannot read a file at that tag.
    """
    crds = {}
    for kind, path in CRD_FILES.items():
        shown = subprocess.run(["git", "-C", repo, "show", f"{tag}:{path}"], capture_output=True, text=True,
                               check=False)
        if shown.returncode != 0:
            raise ValueError(f"cannot read {tag}:{path} in {repo}: {shown.stderr.strip()} "
                             "(a clone of github.com/ray-project/kuberay with its tags: git fetch --tags)")
        crds[kind] = yaml.load(shown.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return crds


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or, with ``--check``, compare) the schema file of each supported release; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m skate.launch.kuberay_schema.generate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--kuberay-repo", required=True, metavar="PATH",
                        help="a git clone of github.com/ray-project/kuberay with its release tags (may be bare)")
    parser.add_argument("--out", default=str(FilePath(__file__).parent), metavar="DIR",
                        help="where the JSON files go (default: this package)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for version, tag in RELEASES.items():
        try:
            text = dump(schema_document(version, tag, read_crds(args.kuberay_repo, tag)))
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        target = FilePath(args.out) / schema_file_name(version)
        if args.check:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                stale.append(str(target))
            continue
        target.write_text(text, encoding="utf-8")
        print(f"{target}: KubeRay {version} ({tag}), {len(text) // 1024} KiB")
    for path in stale:
        print(f"{path}: out of date; run without --check to rewrite it", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
