"""Storage errors in one line that names what to fix, and the cache a URI's copy goes to (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from skate.runs import remote
from skate.uri import join


@pytest.mark.parametrize(("message", "start"), [
    ("When getting information for key 'runs/x' in bucket 'b': AWS Error ACCESS_DENIED during HeadObject operation: "
     "No response body.", "the credentials were refused (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"),
    ("When listing objects under key 'runs' in bucket 'b': AWS Error UNKNOWN (HTTP status 403) during ListObjectsV2 "
     "operation: No response body.", "the credentials were refused"),
    ("When getting information for key 'runs/x' in bucket 'b': AWS Error NETWORK_CONNECTION during HeadObject "
     "operation: curlCode: 7, Couldn't connect to server", "cannot reach the storage endpoint (http://10.0.0.1:9000; "),
])
def test_a_storage_error_says_which_thing_to_fix(message: str, start: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://10.0.0.1:9000")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    said = remote.storage_problem(OSError(message + "\nmore detail"))
    assert said.startswith(start) and said.endswith(message) and "\n" not in said


def test_a_uri_is_cached_under_its_bucket_and_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(remote.CACHE_ENV, str(tmp_path))
    assert remote._cache_path("s3://b/skate/run-1?endpoint_override=http://x:9000") == tmp_path / "runs/s3/b/skate/run-1"


def test_joining_a_name_keeps_a_uris_query_at_the_end() -> None:
    assert join("s3://b/skate/?endpoint_override=http://x:9000", "run-1") == "s3://b/skate/run-1?endpoint_override=http://x:9000"
    assert join("/data/runs/", "run-1") == "/data/runs/run-1"
