"""One page of a long list as a URL names it (`?page=N`, 1 by default): the number checked
(400 naming `page` otherwise), the rows it skips, and the URLs of the other pages, in the
shape the `pagination` macro (templates/_macros.html) reads."""

from __future__ import annotations

from dataclasses import dataclass

from slipstream.web.errors import PageError


@dataclass(frozen=True, slots=True)
class ListPage:
    path: str
    page: int = 1
    size: int = 100

    @classmethod
    def parse(cls, path: str, raw: str, size: int = 100) -> ListPage:
        return cls(path, page_number(raw or "1"), size)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def pages(self, total: int) -> int:
        return max(1, -(-total // self.size))

    def url(self, page: int = 1) -> str:
        return self.path if page == 1 else f"{self.path}?page={page}"


def page_number(raw: str) -> int:
    """`?page=` as a number of 1 or more, or 400 naming `page`."""
    try:
        number = int(raw)
    except ValueError:
        raise PageError(400, detail=f"page must be a whole number, not {raw!r}") from None
    if number < 1:
        raise PageError(400, detail="page must be 1 or more")
    return number
