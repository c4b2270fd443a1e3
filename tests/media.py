"""Real media files for tests, made with the FFmpeg binary the project ships (imageio-ffmpeg)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from music_core.audio.convert import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "demo"
SPEECH_WAV = DEMO / "jfk.wav"  # 11 s of real speech, public domain
SPEECH_MP3 = DEMO / "jfk.mp3"

# extension -> encoder arguments; video containers get a small video stream as well
AUDIO_FORMATS: dict[str, list[str]] = {
    "wav": ["-c:a", "pcm_s16le"],
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "2"],
    "opus": ["-c:a", "libopus", "-b:a", "32k"],
    "m4a": ["-c:a", "aac", "-b:a", "64k"],
    "aiff": ["-c:a", "pcm_s16be"],
    "wma": ["-c:a", "wmav2", "-b:a", "64k"],
    "webm": ["-c:a", "libopus", "-b:a", "32k"],
}
VIDEO_FORMATS: dict[str, list[str]] = {
    "mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "64k"],
    "mkv": ["-c:v", "mpeg4", "-c:a", "libvorbis"],
}


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], check=True)


def encode(dest: Path, source: Path = SPEECH_WAV, extra: tuple[str, ...] = ()) -> Path:
    ext = dest.suffix.lstrip(".")
    if ext in VIDEO_FORMATS:
        ffmpeg(
            "-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-i", str(source), "-shortest",
            "-map", "0:v", "-map", "1:a", *VIDEO_FORMATS[ext], *extra, str(dest),
        )  # fmt: skip
    else:
        ffmpeg("-i", str(source), *AUDIO_FORMATS[ext], *extra, str(dest))
    return dest


def video_without_audio(dest: Path) -> Path:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x64:r=5:d=2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        str(dest),
    )
    return dest


def png_named(dest: Path) -> Path:
    tmp = dest.with_suffix(".png")
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=16x16", "-frames:v", "1", str(tmp))
    tmp.rename(dest)
    return dest


def truncated(dest: Path, source: Path = SPEECH_MP3, fraction: float = 0.4) -> Path:
    data = source.read_bytes()
    dest.write_bytes(data[: int(len(data) * fraction)])
    return dest


def long_tone(dest: Path, seconds: int) -> Path:
    """A long, small file: a low-rate mono MP3 of a warbling tone."""
    ffmpeg(
        "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=8000:duration={seconds}",
        "-af", "vibrato=f=3:d=0.5", "-ac", "1", "-c:a", "libmp3lame", "-b:a", "8k", str(dest),
    )  # fmt: skip
    return dest


def bad_inputs(folder: Path) -> dict[str, Path]:
    """The bad files every stage must survive, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    empty = folder / "empty.mp3"
    empty.write_bytes(b"")
    text = folder / "notes.mp3"
    text.write_text("these are not the droids you are looking for\n" * 20)
    return {
        "empty": empty,
        "truncated": truncated(folder / "truncated.mp3"),
        "text_as_mp3": text,
        "png_as_flac": png_named(folder / "cover.flac"),
        "video_only": video_without_audio(folder / "silent-film.mp4"),
    }


def digital_silence(dest: Path, seconds: float = 20) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={seconds}", "-c:a", "flac", str(dest))
    return dest


def white_noise(dest: Path, seconds: float = 20) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"anoisesrc=r=16000:a=0.3:d={seconds}:seed=7", "-c:a", "flac", str(dest))
    return dest


def instrumental(dest: Path, seconds: float = 30) -> Path:
    """Synthetic music: a chord progression with a plucked envelope and a kick-like pulse."""
    expr = (
        "0.2*sin(2*PI*(220+110*floor(mod(t,8)/2))*t)*exp(-3*mod(t,0.5))"
        "+0.15*sin(2*PI*(330+55*floor(mod(t,8)/2))*t)*exp(-2*mod(t,1))"
        "+0.3*sin(2*PI*60*t)*exp(-20*mod(t,0.5))"
    )
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc=exprs='{expr}':s=16000:d={seconds}", "-c:a", "flac", str(dest))
    return dest


def clip(dest: Path, seconds: float, source: Path = SPEECH_WAV) -> Path:
    ffmpeg("-i", str(source), "-t", str(seconds), "-ac", "1", "-ar", "16000", "-c:a", "flac", str(dest))
    return dest
