"""The writers' queue: one advisory lock that gemini-flow writers wait on before ``BEGIN IMMEDIATE``.

Why not SQLite's own busy handler: it sleeps and polls (1, 2, 5 ... up to 100 ms between tries),
so under contention a waiter that happens to poll just after each release loses over and over and
fails after the busy timeout although no process held the lock for long (issue 12: 13 to 27 of 200
stores failed with 40 processes, the longest hold being 0.67 s). A blocking ``flock(2)`` sleeps in
the kernel and is woken the moment the lock is released, so every waiter gets a turn within a few
holds instead of losing races to polling intervals; SQLite's lock is then nearly always free.

The lock is taken on the database's *folder* (``flock`` on a directory file descriptor), not on a
file of its own: nothing is created next to the database, it works in a folder the process cannot
write, and it never touches the POSIX (``fcntl``) locks SQLite holds on the database file (closing
any descriptor of that file would drop them). Databases sharing a folder share the queue, which
only orders their writers; it never blocks a reader. Processes that do not take the queue (another
program with ``sqlite3``) are still handled by the retry loop around ``BEGIN IMMEDIATE`` (core/db.py).

Only ``os``, ``fcntl`` and (when a wait is needed) ``signal`` or ``threading`` are imported: this is
on the path of every write.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: writers fall back to the retry loop alone
    fcntl = None  # type: ignore[assignment]


class WriterQueue:
    """The exclusive writers' lock of the folder holding a database.

    ``acquire(timeout)`` returns True once held, False when ``timeout`` seconds passed first (or
    when the folder cannot be opened or locked, in which case the caller relies on SQLite's lock
    alone). ``release()`` lets the next writer in. Not reentrant: the caller (``Database.write``)
    takes it once per outermost transaction.
    """

    def __init__(self, database: Path):
        self.folder = database.parent
        self._fd: int | None = None
        self.held = False
        self.available = fcntl is not None

    def _descriptor(self) -> int | None:
        if self._fd is None and self.available:
            try:
                self._fd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                self.available = False  # no queue: the retry loop alone keeps writers apart
        return self._fd

    def still_there(self) -> bool:
        """Whether the locked folder is still the one at its path (not removed, or removed and
        made again, since it was opened): a lock on a removed folder keeps nobody out."""
        if self._fd is None:
            return True
        try:
            held, now = os.fstat(self._fd), os.stat(self.folder)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def try_acquire(self) -> bool:
        """Take the lock only if it is free at once (no waiting)."""
        fd = self._descriptor()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            self.available = False
            return False
        self.held = True
        return True

    def acquire(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the lock; True when held.

        ``flock`` itself has no timeout. In the main thread (the CLI) a SIGALRM timer ends the wait
        (:meth:`_wait_in_this_thread`); elsewhere the blocking ``flock`` runs in a helper thread.
        If the timeout passes first, the helper keeps the descriptor: when it gets the lock later
        it lets it go at once and closes the descriptor, so an abandoned wait never holds the
        queue. Linux queues blocked ``flock`` requests behind one another (since 4.19), so the
        waiters are served about in arrival order and a release wakes only the next one.
        """
        if self.try_acquire():
            return True
        fd = self._fd
        if fd is None or timeout <= 0:
            return False
        held = self._wait_in_this_thread(fd, timeout)
        if held is not None:
            return held
        import threading

        decided = threading.Lock()
        done = threading.Event()
        outcome = {"held": False, "abandoned": False, "failed": False}

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                with decided:
                    outcome["failed"] = True
                    if outcome["abandoned"]:
                        os.close(fd)
                done.set()
                return
            with decided:
                if outcome["abandoned"]:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                else:
                    outcome["held"] = True
            done.set()

        threading.Thread(target=wait, name="gemini-flow-writer-queue", daemon=True).start()
        done.wait(timeout)
        with decided:
            if outcome["failed"]:
                self.close()
                self.available = False
                return False
            if not outcome["held"]:
                outcome["abandoned"] = True
                self._fd = None  # the helper thread owns that descriptor now
                return False
        self.held = True
        return True

    def _wait_in_this_thread(self, fd: int, timeout: float) -> bool | None:
        """Block in ``flock`` here, a SIGALRM timer ending the wait; None when that cannot be used.

        The main thread of a process whose SIGALRM is unused (the CLI) waits itself: when the lock
        is handed over it runs on at once, where a helper thread would first have to wake it,
        time during which the lock is held by a process that is not running.
        """
        import signal

        if not hasattr(signal, "setitimer") or signal.getitimer(signal.ITIMER_REAL) != (0.0, 0.0):
            return None
        try:
            previous = signal.signal(signal.SIGALRM, _alarm)
        except ValueError:  # not the main thread
            return None
        if previous not in (signal.SIG_DFL, signal.SIG_IGN, None):
            signal.signal(signal.SIGALRM, previous)
            return None
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                held = True
            except _Alarm:
                # The alarm may have rung just as the lock was granted: ask again without waiting
                # (on the same open file a held lock is simply kept).
                held = self._try(fd)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except OSError:
            self.available = False
            held = False
        finally:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)
        self.held = held
        return held

    def _try(self, fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def release(self) -> None:
        if self.held and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass
        self.held = False

    def close(self) -> None:
        self.release()
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


class _Alarm(Exception):
    """The writer's wait for the queue reached its deadline."""


def _alarm(signum, frame):
    raise _Alarm
