"""Rendered report files, stored once per content hash under the data directory."""

from __future__ import annotations

import hashlib
from pathlib import Path


class ArtifactStore:
    """Content-addressed files: identical renders share one file; removal is by hash.

    Example:
        >>> store = ArtifactStore(Path("/tmp/artifacts"))  # doctest: +SKIP
        >>> digest = store.adopt(Path("/tmp/render.pdf"))  # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def scratch(self, name: str) -> Path:
        """A path to render into before :meth:`adopt`."""
        (self.root / "tmp").mkdir(exist_ok=True)
        return self.root / "tmp" / name

    def adopt(self, rendered: Path) -> str:
        """Move a rendered file into the store; returns its SHA-256."""
        digest = hashlib.sha256()
        with open(rendered, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        name = digest.hexdigest()
        rendered.replace(self.path(name))
        return name

    def path(self, content_hash: str) -> Path:
        """Where the file of ``content_hash`` lives."""
        return self.root / content_hash

    def remove(self, content_hash: str) -> None:
        """Delete a file (already gone is fine)."""
        self.path(content_hash).unlink(missing_ok=True)

    def hashes(self) -> set[str]:
        """Every stored hash."""
        return {p.name for p in self.root.iterdir() if p.is_file()}
