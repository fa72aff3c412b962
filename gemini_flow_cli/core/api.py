"""The Python API: the seed's ``MemoryManager`` whole, store to restore, over one database.

core/memory.py's ``MemoryManager`` is the memory store, a domain module. Exporting, importing,
backing up and restoring work on the whole database (core/transfer.py, core/backup.py), a layer
above the store, and use it; were they methods of the store, the store would import the modules
that import it. This subclass adds them back for a program that wants the seed's one object
(README "Python API"); the doors (CLI, HTTP, MCP) call those operations directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gemini_flow_cli.core import backup, memory, transfer
from gemini_flow_cli.core.entries import validate_namespace


class MemoryManager(memory.MemoryManager):
    """The memory store (every method of ``core.memory.MemoryManager``) plus the operations over
    the whole database the seed's ``MemoryManager`` has: export, import, backup and restore."""

    # -- export / import -------------------------------------------------------------------

    def export(self, stream, *, namespace: str | None = None) -> int:
        """Write every entry (of ``namespace``, or all) as JSON Lines to ``stream``; see ``core.transfer``."""
        return transfer.export_lines(self.db, stream, namespace=validate_namespace(namespace) if namespace else None)

    def import_(self, path, *, on_conflict: str = "fail", owners: str = "keep",
                progress: Callable[[int], None] | None = None,
                on_validated: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Import a JSON Lines file written by :meth:`export`; see ``core.transfer.import_file``."""
        return transfer.import_file(self.db, path, on_conflict=on_conflict, owners=owners,
                                    max_value_size=self.max_value_size, cipher=self.cipher,
                                    progress=progress, on_validated=on_validated)

    # -- backup / restore --------------------------------------------------------------

    def backup(self, path=None, *, format: str = "sqlite", compress: bool = False) -> dict[str, Any]:
        """A consistent backup of the whole database and its manifest; see ``core.backup.backup``."""
        return backup.backup(self.db, path, format=format, compress=compress)

    def restore(self, path, *, merge: bool = False) -> dict[str, Any]:
        """Restore a verified backup, replacing the contents or merging; see ``core.backup.restore``."""
        return backup.restore(self.db, path, merge=merge)
