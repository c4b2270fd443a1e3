import pytest

from music_core.naming import (
    MAX_SEGMENT_BYTES,
    converted_key,
    decode_original_name,
    encode_original_name,
    folder_of,
    inbox_key,
    original_key,
    portable_name,
    safe_relative_key,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("song.mp3", "song.mp3"),
        ("my song (live).mp3", "my song (live).mp3"),
        ("Rock/Artist/track 01.flac", "Rock/Artist/track 01.flac"),
        ('it\'s "quoted".wav', 'it\'s "quoted".wav'),
        ("ünïcødé ♫ 日本.ogg", "ünïcødé ♫ 日本.ogg"),
        ("../../etc/passwd.mp3", "__/__/etc/passwd.mp3"),
        ("a/./b.mp3", "a/b.mp3"),
        ("win\\path\\x.wav", "win/path/x.wav"),
        ("tab\there\nnl.mp3", "tabherenl.mp3"),
        ("//double//slash.mp3", "double/slash.mp3"),
    ],
)
def test_safe_relative_key(given: str, expected: str) -> None:
    assert safe_relative_key(given) == expected


def test_long_names_are_shortened_but_stay_distinct_and_keep_extension() -> None:
    a = safe_relative_key("x" * 300 + "a.mp3")
    b = safe_relative_key("x" * 300 + "b.mp3")
    assert a != b
    assert a.endswith(".mp3") and b.endswith(".mp3")
    assert len(a.encode()) <= MAX_SEGMENT_BYTES


def test_long_multibyte_names_are_cut_on_character_boundaries() -> None:
    key = safe_relative_key("é" * 300 + ".flac")
    assert len(key.encode()) <= MAX_SEGMENT_BYTES
    key.encode().decode()  # valid UTF-8


def test_inbox_key_prefix() -> None:
    assert inbox_key("inbox/", "../x.mp3") == "inbox/__/x.mp3"


@pytest.mark.parametrize("name", ["plain.mp3", 'ünï ♫/it\'s "q".wav', "100% €.ogg", "a\u200bb.mp3"])
def test_original_name_round_trips_through_ascii_metadata(name: str) -> None:
    encoded = encode_original_name(name)
    assert encoded.isascii()
    assert decode_original_name(encoded) == name


@pytest.mark.parametrize(
    ("name", "folder"), [("song.mp3", None), ("Rock/song.mp3", "Rock"), ("Jazz/Miles/So What.flac", "Jazz")]
)
def test_folder_of(name: str, folder: str | None) -> None:
    assert folder_of(name) == folder


def test_content_addressed_keys() -> None:
    sha = "ab" + "0" * 62
    assert original_key(sha) == f"originals/ab/{sha}"
    assert converted_key(sha) == f"converted/ab/{sha}.flac"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AC/DC", "AC_DC"),
        ("a/b\\c:d*e?f", "a_b_c_d_e_f"),
        ('say "hi" <now> | later', "say _hi_ _now_ _ later"),
        ("../../etc/passwd", ".._.._etc_passwd"),  # one harmless name, not a path
        ("..", "__"),
        ("trailing dots... ", "trailing dots"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("Console", "Console"),
        ("Caf\u0065\u0301 \u266a", "Caf\u00e9 \u266a"),
        ("tab\there", "tabhere"),
        ("", "_"),
    ],
)
def test_portable_names_unpack_the_same_everywhere(text: str, expected: str) -> None:
    assert portable_name(text) == expected
    assert "/" not in portable_name("x/" * 300) and len(portable_name("y" * 500).encode()) <= 200
