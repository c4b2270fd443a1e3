# Every target sets up what it needs. Python 3.11, no Docker, no GPU.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint format bench-ingest bench-asr bench-embed bench-lyrics bench-retention bench-api bench-stream bench-export clean-data venv browser nginx

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch first, so nothing can pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/music-analyzer up

# Browser tests drive Debian's chromium (playwright's own browser download is never used).
browser:
	command -v chromium >/dev/null || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium)

# bench-stream compares the API with Debian's nginx (in /usr/sbin, often not on a user's PATH).
nginx:
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx)

test: $(STAMP) browser
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-ingest: $(STAMP)
	$(BIN)/python bench/bench_ingest.py $(BENCH_ARGS)

bench-asr: $(STAMP)
	$(BIN)/python bench/bench_asr.py

bench-embed: $(STAMP)
	$(BIN)/python bench/bench_embed.py

bench-lyrics: $(STAMP)
	$(BIN)/python bench/bench_lyrics.py

bench-retention: $(STAMP)
	$(BIN)/python bench/bench_retention.py $(BENCH_ARGS)

bench-api: $(STAMP)
	$(BIN)/python bench/bench_api.py $(BENCH_ARGS)

bench-stream: $(STAMP) nginx
	$(BIN)/python bench/bench_stream.py $(BENCH_ARGS)

bench-export: $(STAMP)
	$(BIN)/python bench/bench_export.py $(BENCH_ARGS)

clean-data:
	rm -rf .data
