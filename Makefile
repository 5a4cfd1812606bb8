# Two commands do everything on a fresh machine:
#   make demo   - set up, then stylize the shipped sample clip (and an image, a preview, an evaluation)
#   make test   - set up, then run ruff and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A pinned torch first: here it resolves to a local CPU wheel; elsewhere pip picks the build for the machine.
TORCH_SPEC ?= torch==2.13.0
OUT ?= out

.PHONY: setup demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

demo: setup
	mkdir -p $(OUT)
	$(BIN)/vidstyle probe samples/landscape.mp4
	$(BIN)/vidstyle image samples/landscape_still.png --style samples/swirl_paint.png --preset fast \
		-o $(OUT)/still_swirl.png --overwrite
	$(BIN)/vidstyle image samples/landscape_still.png --method paint --strokes 400 \
		-o $(OUT)/still_painted.png --svg $(OUT)/still_painted.svg --overwrite
	$(BIN)/vidstyle preview samples/landscape.mp4 --style samples/ink_wash.png --preset ink --size 256 \
		--iterations 120 --later-iterations 40 --at 00:00:01.000 --count 4 -o $(OUT)/preview_ink.png --overwrite
	$(BIN)/vidstyle stylize samples/landscape.mp4 --style samples/swirl_paint.png --preset fast \
		--size 192 --frames 0:48 -o $(OUT)/landscape_swirl.mp4 --overwrite
	$(BIN)/vidstyle eval samples/landscape.mp4 $(OUT)/landscape_swirl.mp4
	$(BIN)/vidstyle stylize samples/subject.mp4 --style keep --mask samples/subject_mask.mp4 \
		--background-style samples/swirl_paint.png --mask-feather 2 --preset fast --size 160 \
		--frames 0:24 --chunk-frames 12 -o $(OUT)/subject_kept.mp4 --overwrite
	@echo "demo outputs are in $(OUT)/"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) $(OUT)
