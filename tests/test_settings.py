from pathlib import Path

import pytest
from pydantic import ValidationError

from music_core.settings import Settings


def test_environment_prefix_and_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSIC_BUCKET", "songs")
    monkeypatch.setenv("MUSIC_WORKERS", "3")
    monkeypatch.setenv("MUSIC_S3_SECURE", "true")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (s.bucket, s.workers, s.s3_secure) == ("songs", 3, True)


@pytest.mark.parametrize(("given", "expected"), [("inbox", "inbox/"), ("/up/loads/", "up/loads/")])
def test_inbox_prefix_is_normalised(given: str, expected: str) -> None:
    assert Settings(_env_file=None, inbox_prefix=given).inbox_prefix == expected  # type: ignore[call-arg]


@pytest.mark.parametrize("field", [{"inbox_prefix": "/"}, {"workers": 0}, {"tracks_per_run": 0}])
def test_invalid_values_are_refused(field: dict) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **field)  # type: ignore[call-arg]


def test_embedded_unless_every_service_is_configured(tmp_path: Path) -> None:
    unset = {"database_url": None, "s3_endpoint": None, "redis_url": None}
    base = {"_env_file": None, "data_dir": tmp_path}
    assert Settings(**base, **unset).embedded  # type: ignore[arg-type]
    configured = Settings(
        **base,  # type: ignore[arg-type]
        database_url="postgresql://x/y",
        s3_endpoint="minio:9000",
        redis_url="redis://r:6379/0",
    )
    assert not configured.embedded
    assert configured.data_path == tmp_path.resolve()
