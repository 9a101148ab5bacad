"""A bounded in-process moving-window store for `limits`.

`limits`' own memory storage keeps every key until its window passes and sweeps all keys
in a background task; with many tenants that grows without bound. This store keeps at
most `max_keys` windows (least recently used evicted first), each holding at most
`limit` timestamps, and does all its work inline.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import OrderedDict

from limits.aio.storage import MovingWindowSupport, Storage


class BoundedMemoryStorage(Storage, MovingWindowSupport):
    def __init__(self, max_keys: int = 10_000) -> None:
        super().__init__()
        self.max_keys = max_keys
        # Per key: acquisition times, oldest first; least recently used key first.
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def _window(self, key: str, expiry: float, now: float) -> list[float]:
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = []
            if len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(key)
            del window[: bisect_right(window, now - expiry)]
        return window

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        # No await inside: on one event loop this check-and-add is atomic.
        now = time.time()
        window = self._window(key, expiry, now)
        if len(window) + amount > limit:
            return False
        window.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        window = self._windows.get(key, [])
        live = window[bisect_right(window, now - expiry) :]
        return (live[0], len(live)) if live else (now, 0)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int:
        count = len(self._windows)
        self._windows.clear()
        return count

    async def clear(self, key: str) -> None:
        self._windows.pop(key, None)

    # Fixed-window counters are not used by the moving-window strategy.
    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        raise NotImplementedError("BoundedMemoryStorage supports the moving window only")

    async def get(self, key: str) -> int:
        raise NotImplementedError("BoundedMemoryStorage supports the moving window only")

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("BoundedMemoryStorage supports the moving window only")
