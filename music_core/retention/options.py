"""What a cleanup removes. Names follow the design document's cleanup options."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RemovalOptions:
    delete_original: bool = True
    delete_converted: bool = True
    delete_vectors: bool = True
    delete_analysis: bool = True  # transcriptions, fetched lyrics, comparisons (pinned lyrics stay)
    delete_db_entries: bool = True  # the whole track: every row, alias and object
    clear_cache: bool = True

    def __post_init__(self) -> None:
        if self.delete_db_entries and not (self.delete_original and self.delete_converted):
            raise ValueError(
                "removing a track's rows needs its original and converted objects removed too, "
                "otherwise they would be left behind as orphans"
            )
        if not any(self.as_dict().values()):
            raise ValueError("these options remove nothing")

    @classmethod
    def everything(cls) -> RemovalOptions:
        return cls()

    @classmethod
    def keep_originals(cls) -> RemovalOptions:
        """Drop derived data (converted audio, vectors, analysis); keep the original and its row."""
        return cls(delete_original=False, delete_db_entries=False)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RemovalOptions:
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown removal options: {', '.join(sorted(unknown))}")
        return cls(**{k: bool(v) for k, v in values.items()})

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)

    @property
    def removes_track(self) -> bool:
        return self.delete_db_entries
