# Every target does its own set-up: a fresh Debian machine needs only `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.core-installed
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-core bench docs site serve fuzz lint clean dot fonts chromium char-lm

setup: $(STAMP) dot fonts chromium

# Two stamps, one venv: the core (what `make demo` needs) is installed first, and the test
# set-up adds the extras to it. Neither reinstalls what the other put there.
$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(CORE)

# The extras are asked for by name on the installed project, so pip adds them without
# rebuilding the project itself.
$(STAMP): $(CORE)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet 'rnn-composer[test]'
	touch $(STAMP)

# Graphviz's `dot`: apt-get when missing and root, else say what to install.
dot:
	@if command -v dot >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Graphviz (dot) with apt-get"; \
	  (apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null)); \
	else \
	  echo "note: Graphviz's 'dot' is missing; install it (Debian: sudo apt-get install graphviz)"; \
	fi

# DejaVu Sans: the font every picture names, so that Graphviz lays text out with the
# metrics a browser draws it with. apt-get when missing and root, else say what to install.
fonts:
	@if fc-list 2>/dev/null | grep -q "DejaVu Sans"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing DejaVu Sans with apt-get"; \
	  (apt-get install -y -qq fonts-dejavu-core >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq fonts-dejavu-core >/dev/null)); \
	else \
	  echo "note: the DejaVu Sans font is missing; pictures fall back to another font (Debian: sudo apt-get install fonts-dejavu-core)"; \
	fi

# Chromium for the interactive page's browser tests (Playwright drives the system's browser):
# apt-get when missing and root, else the tests skip and say why.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Chromium with apt-get (for the browser tests)"; \
	  (apt-get install -y -qq chromium >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)); \
	else \
	  echo "note: Chromium is missing; the browser tests will skip (Debian: sudo apt-get install chromium)"; \
	fi

# The lecture's network: its weights, what each output depends on, a run on a
# four-step input (one-hot rows in specs/data/lecture-x.csv), and its diagrams.
demo: $(CORE) dot fonts
	$(BIN)/rnn-composer summary specs/lecture-elman.yaml
	$(BIN)/rnn-composer deps specs/lecture-elman.yaml
	$(BIN)/rnn-composer run specs/lecture-elman.yaml --input specs/data/lecture-x.csv
	@echo "a padded batch of three sentences (10, 7 and 4 words), then the third one alone:"
	$(BIN)/rnn-composer run specs/sentiment.yaml --input specs/data/sentences.npz
	$(BIN)/rnn-composer run specs/sentiment.yaml --input specs/data/sentence-2.npy
	mkdir -p out
	$(BIN)/rnn-composer render specs/lecture-elman.yaml --format svg --output out/lecture-elman.svg --force
	$(BIN)/rnn-composer render specs/lecture-elman.yaml --format png --output out/lecture-elman.png --force
	@echo "diagrams: out/lecture-elman.folded.{svg,png} and out/lecture-elman.unfolded.{svg,png}"

# Speed against PyTorch and a hand-written NumPy loop, ratios in one run (not part of test):
# the forward pass, then one training step (forward, backward, Adam), then padded batches;
# then speed beside busy processes (the thread policy) and many short calls in one process.
bench: setup
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_unroll.py
	$(BIN)/python bench/bench_lengths.py
	$(BIN)/python bench/bench_onnx.py
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_torch_engine.py
	$(BIN)/python bench/bench_load.py
	$(BIN)/python bench/bench_short.py
	$(BIN)/python bench/bench_engines.py

# A character-level language model of this project's own documentation: the text as ids
# (80 tokens: the 79 commonest characters and one for the rest), a short training run,
# then 300 characters of generated text, streamed (docs/training.md, "Language models").
CHAR_LM_EPOCHS ?= 3
char-lm: setup
	mkdir -p out
	$(BIN)/rnn-composer data text README.md docs/*.md --output out/char-lm.npz \
	  --vocab out/char-lm.vocab.json --names chars,next --seq-len 64 --vocab-size 80 --force
	$(BIN)/rnn-composer train specs/char-lm.yaml --data out/char-lm.npz --loss cross-entropy \
	  --epochs $(CHAR_LM_EPOCHS) --lr 0.01 --clip 5 --output out/char-lm.weights.npz --force
	$(BIN)/rnn-composer generate specs/char-lm.yaml --weights out/char-lm.weights.npz \
	  --vocab out/char-lm.vocab.json --prompt "The " --length 300 --seed 0

# The gallery of every spec, folded and unfolded (docs/gallery.md), then the site's
# generated pages: the spec, CLI, API and weight-key references and the tutorial's pictures.
docs: setup
	$(BIN)/python tools/gallery.py
	$(BIN)/python tools/site.py

# The documentation site (mkdocs.yml), offline: built into site/, or served with live
# reload at http://127.0.0.1:8000 (`make serve`).
site: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

serve: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

test: setup
	$(BIN)/python -m pytest

# The core install alone, in a venv of its own: the tests that need no extra run and pass,
# the others skip with their reason, and the README's core commands work.
CORE_VENV := .venv-core
test-core: dot fonts
	test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e . 'pytest>=8' 'hypothesis>=6.90'
	@if $(CORE_VENV)/bin/python -c 'import torch' 2>/dev/null || \
	    $(CORE_VENV)/bin/python -c 'import onnx' 2>/dev/null || \
	    $(CORE_VENV)/bin/python -c 'import numba' 2>/dev/null; then \
	  echo "$(CORE_VENV) holds an extra; it must hold the core alone"; exit 1; fi
	$(CORE_VENV)/bin/python -m pytest -rs
	mkdir -p out/core
	$(CORE_VENV)/bin/rnn-composer --version
	$(CORE_VENV)/bin/rnn-composer validate specs/*.yaml
	$(CORE_VENV)/bin/rnn-composer summary specs/lecture-stack.yaml
	$(CORE_VENV)/bin/rnn-composer deps specs/encoder-decoder.yaml
	$(CORE_VENV)/bin/rnn-composer run specs/lecture-elman.yaml --input specs/data/lecture-x.csv
	$(CORE_VENV)/bin/rnn-composer run specs/sentiment.yaml --input specs/data/sentences.npz \
	  --output out/core/o.npz --force
	$(CORE_VENV)/bin/rnn-composer render specs/lecture-elman.yaml --format svg \
	  --output out/core/lecture-elman.svg --force

# A longer fuzz run than `make test` does: thousands of mutated specs and array files, and
# the memory limits measured on runs that fit them (`make fuzz FUZZ_EXAMPLES=10000`).
FUZZ_EXAMPLES ?= 5000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py tests/test_fuzz_language.py \
	  tests/spec/test_reader.py tests/interop/test_state_files_fuzz.py tests/interop/test_fuzz_onnx.py \
	  tests/cli/test_fuzz_env.py tests/cli/test_memory_limits.py tests/test_signals.py \
	  -k "fuzz or random or fail_cleanly or limit or ctrl_c"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(CORE_VENV) build site *.egg-info .pytest_cache .hypothesis
