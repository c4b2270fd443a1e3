# Production image: pipeline code location, Dagster webserver/daemon and the API share it.
FROM python:3.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 DAGSTER_HOME=/opt/dagster/home
WORKDIR /opt/dagster/app

# torch first and pinned, so no other requirement resolves a different build. Point
# PIP_EXTRA_INDEX_URL at a CPU-only wheel index to keep the image small on CPU hosts.
ARG PIP_EXTRA_INDEX_URL=""
RUN pip install "torch==2.13.0"

COPY pyproject.toml README.md ./
COPY music_core ./music_core
COPY music_pipeline ./music_pipeline
COPY music_api ./music_api
COPY dagster.yaml workspace.yaml ./
COPY deploy ./deploy
COPY demo ./demo
RUN pip install -e . && mkdir -p "$DAGSTER_HOME" && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# /run/music (the search service's socket), /models (the ONNX query encoder) and /cache (the API's audio copies) are volume mount
# points: a new named volume takes the owner of the image's directory, so they must belong to music.
RUN useradd --create-home --uid 10001 music && chown -R music "$DAGSTER_HOME" \
    && mkdir -p /run/music /models /cache && chown music /run/music /models /cache
USER music
