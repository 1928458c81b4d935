"""create_object when the writer may create objects but not read them (roles/storage.objectCreator, which
docs/security.md recommends): the GCS emulator has no IAM, so a small stand-in bucket plays that role."""

from __future__ import annotations

from google.api_core.exceptions import Forbidden, PreconditionFailed

from beam_pipeline.transforms.windowed_files import create_object


class _CreateOnlyBucket:
    def __init__(self, existing: dict[str, bytes]) -> None:
        self.objects = dict(existing)

    def blob(self, name: str) -> _Blob:
        return _Blob(self, name)


class _Blob:
    def __init__(self, bucket: _CreateOnlyBucket, name: str) -> None:
        self.bucket, self.name = bucket, name

    def upload_from_string(self, body: bytes, *, if_generation_match: int, **_kwargs: object) -> None:
        assert if_generation_match == 0  # create-only, always
        if self.name in self.bucket.objects:
            raise PreconditionFailed("exists")
        self.bucket.objects[self.name] = body

    def download_as_bytes(self) -> bytes:
        raise Forbidden("storage.objects.get denied")


def test_a_clash_the_writer_cannot_read_takes_a_new_name_and_keeps_both():
    bucket = _CreateOnlyBucket({"errors/x/w-shard00-job.ndjson": b"theirs\n"})
    name = create_object(bucket, "errors/x/w-shard00-job.ndjson", b"ours\n")
    assert name != "errors/x/w-shard00-job.ndjson" and name.startswith("errors/x/w-shard00-job-")
    assert bucket.objects == {"errors/x/w-shard00-job.ndjson": b"theirs\n", name: b"ours\n"}
