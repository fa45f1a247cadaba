"""Where backups go: S3-compatible storage (Backblaze B2 in production) or a local directory."""

import os
import shutil
from pathlib import Path

from django.conf import settings


class LocalDirectoryStorage:
    def __init__(self, root):
        self.root = Path(root)

    def put(self, name: str, reader, *, metadata: dict | None = None) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "wb") as handle:
                shutil.copyfileobj(reader, handle, 1024 * 1024)
        except BaseException:  # an error, or the task's time limit: no half-written file is left
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)

    def open(self, name: str):
        return open(self.root / name, "rb")

    def names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(
            str(path.relative_to(self.root))
            for path in self.root.rglob("*")
            if path.is_file() and not path.name.endswith(".partial")
        )

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class S3Storage:
    """Any S3-compatible endpoint (Backblaze B2: https://s3.<region>.backblazeb2.com)."""

    def __init__(self, *, bucket: str, prefix: str = "", **client_options):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client(
            "s3",
            config=Config(connect_timeout=10, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
            **client_options,
        )

    def put(self, name: str, reader, *, metadata: dict | None = None) -> None:
        self.client.upload_fileobj(reader, self.bucket, self.prefix + name, ExtraArgs={"Metadata": metadata or {}})

    def open(self, name: str):
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"]

    def names(self) -> list[str]:
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            found.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
        return sorted(found)

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)


def backup_storage():
    if settings.BACKUP_STORAGE == "s3":
        return S3Storage(
            bucket=settings.BACKUP_S3_BUCKET,
            prefix=settings.BACKUP_S3_PREFIX,
            endpoint_url=settings.BACKUP_S3_ENDPOINT_URL or None,
            region_name=settings.BACKUP_S3_REGION or None,
            aws_access_key_id=settings.BACKUP_S3_ACCESS_KEY_ID or None,
            aws_secret_access_key=settings.BACKUP_S3_SECRET_ACCESS_KEY or None,
        )
    return LocalDirectoryStorage(settings.BACKUP_LOCAL_DIRECTORY)
