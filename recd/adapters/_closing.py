"""A mixin giving an adapter with ``close()`` the context-manager protocol."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with Thing(...) as t:`` calls ``t.close()`` on the way out, exception or not."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
