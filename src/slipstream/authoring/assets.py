"""Assets (Airflow 3) and Datasets (Airflow 2.4-2.10): named pieces of data a task updates
(`outlets=`) and a DAG may be scheduled on, alone or in `&`/`|` conditions.

A condition is stored in a DAG version as plain JSON (`condition_spec`), and the scheduler
judges it with `is_satisfied` from the set of asset URIs updated since the DAG's last
asset-triggered run: it never sees these classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from slipstream.errors import DagDefinitionError, NotAvailableYet

__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "Dataset",
    "DatasetAlias",
    "DatasetAll",
    "DatasetAny",
    "asset_uris",
    "condition_from",
    "condition_spec",
    "is_satisfied",
]

# Airflow 3's limits on an asset's name and URI.
MAX_LENGTH = 1500
DEFAULT_GROUP = "asset"


def _checked_text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise DagDefinitionError(f"an asset's {what} must be a string, not {type(value).__name__}")
    if not value or value.isspace():
        raise DagDefinitionError(f"an asset's {what} cannot be empty")
    if len(value) > MAX_LENGTH:
        raise DagDefinitionError(f"an asset's {what} cannot exceed {MAX_LENGTH} characters")
    if not value.isascii():
        raise DagDefinitionError(f"an asset's {what} must only consist of ASCII characters")
    return value


def checked_uri(uri: object) -> str:
    """An asset URI as Airflow accepts it: ASCII, at most 1500 characters, no `airflow`
    scheme (reserved) and no user:password part. A bare name (no scheme) stands as given."""
    text = _checked_text(uri, "uri")
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.scheme.lower() == "airflow":
        raise DagDefinitionError(f"asset URI {text!r}: the scheme 'airflow' is reserved")
    if parts.username is not None or parts.password is not None:
        raise DagDefinitionError(
            f"asset URI {parts.scheme}://...: including auth info (user:password) in an asset "
            "URI is not supported"
        )
    # Airflow normalises the scheme to lower case and drops an empty fragment.
    return parts._replace(scheme=parts.scheme.lower()).geturl()


def _checked_extra(extra: object, owner: str) -> dict[str, Any]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise DagDefinitionError(f"{owner}: extra must be a dict, not {type(extra).__name__}")
    try:
        json.dumps(dict(extra), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DagDefinitionError(f"{owner}: extra must be JSON-serializable: {exc}") from None
    return dict(extra)


class BaseAsset:
    """What may stand in a schedule: an asset or a condition over assets."""

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def iter_assets(self) -> Iterator[Asset]:
        raise NotImplementedError


class Asset(BaseAsset):
    """Airflow 3's Asset: give a name, a URI or both; the one not given is the other."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str | None = None,
        extra: Mapping[str, Any] | None = None,
        watchers: Iterable[Any] | None = None,
    ) -> None:
        if watchers:
            raise NotAvailableYet(
                "Asset(watchers=[AssetWatcher(...)])",
                "event-driven scheduling needs a triggerer process to run the watchers' "
                "triggers, which Slipstream does not have; record the asset's events from "
                "outside with POST /api/v1/datasets/events instead",
            )
        if name is None and uri is None:
            raise DagDefinitionError("an Asset needs a name or a uri")
        self.name = _checked_text(name if name is not None else uri, "name")
        self.uri = checked_uri(uri if uri is not None else name)
        self.group = _checked_text(group, "group") if group is not None else DEFAULT_GROUP
        self.extra = _checked_extra(extra, f"asset {self.uri!r}")

    def iter_assets(self) -> Iterator[Asset]:
        yield self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and (self.uri, self.name) == (other.uri, other.name)

    def __hash__(self) -> int:
        return hash((self.uri, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, uri={self.uri!r})"

    def describe(self) -> dict[str, Any]:
        """What a DAG version records of the asset (the store keeps one row per URI)."""
        return {"uri": self.uri, "name": self.name, "group": self.group, "extra": self.extra}


class Dataset(Asset):
    """Airflow 2's Dataset(uri, extra): an Asset whose name is its URI."""

    def __init__(self, uri: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(uri=uri, extra=extra)


class _Condition(BaseAsset):
    kind = ""

    def __init__(self, *objects: BaseAsset) -> None:
        for item in objects:
            if isinstance(item, AssetAlias):
                item.refuse()
            if not isinstance(item, BaseAsset):
                raise DagDefinitionError(
                    f"{type(self).__name__} takes assets or asset conditions, not "
                    f"{type(item).__name__}"
                )
        if not objects:
            raise DagDefinitionError(f"{type(self).__name__} needs at least one asset")
        self.objects = objects

    def iter_assets(self) -> Iterator[Asset]:
        for item in self.objects:
            yield from item.iter_assets()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"


class AssetAll(_Condition):
    """Every one of its parts updated (`a & b`)."""

    kind = "all"


class AssetAny(_Condition):
    """At least one of its parts updated (`a | b`)."""

    kind = "any"


class DatasetAll(AssetAll):
    pass


class DatasetAny(AssetAny):
    pass


class AssetAlias(BaseAsset):
    """Airflow's AssetAlias/DatasetAlias (assets named at run time): not built in Slipstream,
    so creating one is a DAG definition error naming it."""

    def __init__(self, name: str, group: str = "") -> None:
        self.name = name
        self.refuse()

    def refuse(self) -> None:
        raise NotAvailableYet(
            f"{type(self).__name__}({getattr(self, 'name', '')!r})",
            "asset aliases are not supported; name the assets themselves in outlets and schedules",
        )


class DatasetAlias(AssetAlias):
    pass


def condition_from(value: object) -> BaseAsset | None:
    """The asset condition a `schedule=` value means (a list means all of them), or None when
    it is not about assets."""
    if isinstance(value, AssetAlias):
        value.refuse()
    if isinstance(value, BaseAsset):
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if not items:
            raise DagDefinitionError("schedule=[] names no asset: give at least one, or None")
        if all(isinstance(item, BaseAsset) for item in items):
            return items[0] if len(items) == 1 else AssetAll(*items)
        names = sorted({type(item).__name__ for item in items})
        raise DagDefinitionError(
            f"a list as schedule must hold assets/datasets only, not {', '.join(names)}"
        )
    return None


def condition_spec(condition: BaseAsset) -> dict[str, Any]:
    """The JSON form of a condition: {"asset": {...}} leaves under {"all"|"any": [...]}."""
    if isinstance(condition, Asset):
        return {"asset": condition.describe()}
    if isinstance(condition, _Condition):
        return {condition.kind: [condition_spec(item) for item in condition.objects]}
    raise DagDefinitionError(f"not an asset condition: {type(condition).__name__}")


def spec_assets(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Each asset description in a condition spec (repeats included)."""
    if "asset" in spec:
        yield spec["asset"]
        return
    for part in spec.get("all", spec.get("any", ())):
        yield from spec_assets(part)


def asset_uris(spec: Mapping[str, Any]) -> frozenset[str]:
    """Every asset URI a condition spec names."""
    return frozenset(str(item["uri"]) for item in spec_assets(spec))


def is_satisfied(spec: Mapping[str, Any], updated: frozenset[str] | set[str]) -> bool:
    """Whether a condition spec holds when the assets in `updated` (URIs) have new events."""
    if "asset" in spec:
        return str(spec["asset"]["uri"]) in updated
    if "all" in spec:
        return all(is_satisfied(part, updated) for part in spec["all"])
    return any(is_satisfied(part, updated) for part in spec.get("any", ()))


def condition_text(spec: Mapping[str, Any]) -> str:
    """A condition as people read it: `a & (b | c)`."""
    if "asset" in spec:
        return str(spec["asset"]["uri"])
    kind = "all" if "all" in spec else "any"
    parts = [condition_text(part) for part in spec[kind]]
    joined = (" & " if kind == "all" else " | ").join(
        part if "asset" in sub else f"({part})" for part, sub in zip(parts, spec[kind], strict=True)
    )
    return joined


def outlets_of(value: object, owner: str) -> list[Asset]:
    """A task's `outlets=`: assets (a single one or a list); anything else is refused."""
    if value is None:
        return []
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    found: list[Asset] = []
    for item in items:
        if isinstance(item, AssetAlias):
            item.refuse()
        if not isinstance(item, Asset):
            raise DagDefinitionError(
                f"outlets of {owner} must be assets/datasets, not {type(item).__name__}"
            )
        if item not in found:
            found.append(item)
    return found
