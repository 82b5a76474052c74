"""The Graph tab's drawings, kept per DAG version (its structure hash) in a bounded LRU owned
by the web app: a version's structure never changes, so its layout is worked out once, not
on every page load and live refresh of every run."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from slipstream.web.graph_drawing import Drawing

# A few hundred DAG versions' drawings: some kilobytes each for a typical DAG.
DEFAULT_SIZE = 256


class GraphCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 1:
            raise ValueError("a graph cache holds at least one drawing")
        self._size = size
        self._drawings: OrderedDict[str, Drawing] = OrderedDict()
        # Pages are drawn in the server's thread pool.
        self._lock = threading.Lock()

    def get(self, version_hash: str, make: Callable[[], Drawing]) -> Drawing:
        """The drawing of this version, made (outside the lock) when not kept."""
        with self._lock:
            drawing = self._drawings.get(version_hash)
            if drawing is not None:
                self._drawings.move_to_end(version_hash)
                return drawing
        drawing = make()
        with self._lock:
            self._drawings[version_hash] = drawing
            self._drawings.move_to_end(version_hash)
            while len(self._drawings) > self._size:
                self._drawings.popitem(last=False)
        return drawing

    def __len__(self) -> int:
        with self._lock:
            return len(self._drawings)
