"""Storage backends behind one interface: a local directory, or S3-compatible object storage.

Both write under a dated key (`YYYY/MM/DD/<name>`), report a URI, and can re-read what they hold
so that the pipeline and `ivr recordings verify` check size and SHA-256 of the stored copy itself.
Blocking I/O (files, boto3) runs in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ivr.files import private_new_file

CHUNK = 1024 * 1024


_FULL = (errno.ENOSPC, errno.EDQUOT)


class StorageError(Exception):
    """The backend could not do it now (down, refused, full); the caller retries later."""

    def __init__(self, message: str, *, no_space: bool = False) -> None:
        super().__init__(message)
        self.no_space = no_space  # the disk is full: worth an alert at once, not after retries


@dataclass(frozen=True)
class Digest:
    bytes: int
    sha256: str


class SourceChanged(StorageError):
    """The file to store is not what was hashed (it was still being written); nothing stored."""

    def __init__(self, digest: Digest) -> None:
        super().__init__(f"the spool file changed: now {digest.bytes} bytes")
        self.digest = digest


def hash_stream(chunks: Iterator[bytes]) -> Digest:
    h = hashlib.sha256()
    n = 0
    for chunk in chunks:
        h.update(chunk)
        n += len(chunk)
    return Digest(n, h.hexdigest())


def file_chunks(fh: BinaryIO) -> Iterator[bytes]:
    while chunk := fh.read(CHUNK):
        yield chunk


def hash_file(path: Path) -> Digest:
    with path.open("rb") as fh:
        return hash_stream(file_chunks(fh))


def dated_key(name: str, day: date) -> str:
    return f"{day:%Y/%m/%d}/{name}"


class Storage(Protocol):
    async def put(self, path: Path, key: str, digest: Digest) -> str:
        """Store the file under `key` if it still has `digest`; the URI.

        Raises SourceChanged (storing nothing) when it does not, StorageError on failure."""
        ...

    async def digest(self, uri: str) -> Digest:
        """Size and SHA-256 of the stored object, read back in full."""
        ...

    async def export(self, uri: str, dest: Path) -> Digest:
        """Copy the stored object to `dest` (a new file); what was written."""
        ...

    async def delete(self, uri: str) -> None: ...

    def describe(self) -> str: ...


class LocalStorage:
    """A directory: temporary name, fsync, atomic rename, fsync of the directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"local directory {self.root}"

    def _path(self, uri: str) -> Path:
        if not uri.startswith("file://"):
            raise StorageError(f"not a local storage URI: {uri!r}")
        path = Path(uri.removeprefix("file://"))
        if self.root.resolve() not in path.resolve().parents:
            raise StorageError(f"{uri!r} is outside {self.root}")
        return path

    async def put(self, path: Path, key: str, digest: Digest) -> str:
        return await asyncio.to_thread(self._put, path, key, digest)

    def _put(self, path: Path, key: str, digest: Digest) -> str:
        target = self.root / key
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
            try:
                h = hashlib.sha256()
                n = 0
                with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                    for chunk in file_chunks(src):
                        h.update(chunk)
                        n += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                copied = Digest(n, h.hexdigest())
                if copied != digest:
                    raise SourceChanged(copied)
                os.chmod(tmp, 0o640)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dfd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            raise StorageError(
                f"{target}: {exc.strerror or exc}", no_space=exc.errno in _FULL
            ) from exc
        return f"file://{target}"

    async def digest(self, uri: str) -> Digest:
        path = self._path(uri)
        try:
            return await asyncio.to_thread(hash_file, path)
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from exc

    async def export(self, uri: str, dest: Path) -> Digest:
        path = self._path(uri)

        def copy() -> Digest:
            with path.open("rb") as src, private_new_file(dest) as out:
                h, n = hashlib.sha256(), 0
                for chunk in file_chunks(src):
                    h.update(chunk)
                    n += len(chunk)
                    out.write(chunk)
                return Digest(n, h.hexdigest())

        try:
            return await asyncio.to_thread(copy)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(f"{exc.filename or dest}: {exc.strerror or exc}") from exc

    async def delete(self, uri: str) -> None:
        path = self._path(uri)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from exc


class S3Storage:
    """S3-compatible storage with boto3; credentials from the environment (boto3's chain).

    The upload carries its SHA-256 (`ChecksumSHA256`), so S3 and MinIO refuse a body that
    arrived corrupted; the pipeline then reads the object back and hashes it anyway.
    """

    def __init__(
        self, bucket: str, prefix: str, endpoint_url: str | None, region: str, *, timeout_s: float
    ) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            config=BotoConfig(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"max_attempts": 1},  # the pipeline retries, with its own backoff
            ),
        )

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, uri: str) -> str:
        head = f"s3://{self.bucket}/"
        if not uri.startswith(head):
            raise StorageError(f"not an object of bucket {self.bucket}: {uri!r}")
        return uri.removeprefix(head)

    async def _call(self, fn: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return await asyncio.to_thread(fn, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(str(exc)) from exc

    async def put(self, path: Path, key: str, digest: Digest) -> str:
        full = f"{self.prefix}/{key}" if self.prefix else key
        checksum = base64.b64encode(bytes.fromhex(digest.sha256)).decode()
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from exc
        read = hash_stream(iter([body]))
        if read != digest:
            raise SourceChanged(read)
        await self._call(
            self._client.put_object,
            Bucket=self.bucket,
            Key=full,
            Body=body,
            ChecksumSHA256=checksum,
            ContentType="audio/wav",
        )
        return f"s3://{self.bucket}/{full}"

    async def _read(self, uri: str) -> bytes:
        resp = await self._call(self._client.get_object, Bucket=self.bucket, Key=self._key(uri))
        try:
            data: bytes = await asyncio.to_thread(resp["Body"].read)
        except OSError as exc:
            raise StorageError(str(exc)) from exc
        return data

    async def digest(self, uri: str) -> Digest:
        return hash_stream(iter([await self._read(uri)]))

    async def export(self, uri: str, dest: Path) -> Digest:
        data = await self._read(uri)

        def write() -> None:
            with private_new_file(dest) as out:
                out.write(data)

        try:
            await asyncio.to_thread(write)
        except FileExistsError:
            raise
        except OSError as exc:
            raise StorageError(f"{dest}: {exc.strerror or exc}") from exc
        return hash_stream(iter([data]))

    async def delete(self, uri: str) -> None:
        await self._call(self._client.delete_object, Bucket=self.bucket, Key=self._key(uri))


def build_storage(cfg: Any) -> Storage:
    """The configured backend (`cfg` is the whole Config)."""
    s = cfg.storage
    if s.backend == "s3":
        return S3Storage(
            s.s3_bucket, s.s3_prefix, s.s3_endpoint_url or None, s.s3_region, timeout_s=s.timeout_s
        )
    return LocalStorage(cfg.storage_dir())
