# Two commands for a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The quickstart extra (scikit-image, for its bundled LFW faces) is installed too, so the
# quickstart's tests run in CI.
# The CUDA build of TensorFlow only when an NVIDIA driver is present; the CPU build is half the size.
TF_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo gpu || echo cpu)
# Cache the compiled ops inside the checkout so test runs are self-contained.
export SG2TF_CACHE_DIR ?= $(CURDIR)/.build_cache
export TF_CPP_MIN_LOG_LEVEL ?= 1
PYTEST_ARGS ?=
# Test processes (pytest-xdist): one per core, at most 4 (each loads TensorFlow). A test
# class or module stays in one process (its set-up is shared).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: venv ops test quickstart bench gpu-check clean

# pip install -e also installs the console scripts (sg2tf-train, sg2tf-dataset, ...) into
# $(VENV)/bin; rerun when pyproject.toml (which lists them) changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(TF_EXTRA),test,quickstart]"
	touch $@

venv: $(VENV)/.installed

# Strict: a failed build fails. Overrides: CXX, CXXFLAGS, LDFLAGS, NVCC, NVCCFLAGS,
# SG2TF_OPS_VARIANT=baseline|tuned (README, "Building").
ops: venv
	$(PY) -m sg2tf.custom_ops.build

# The quickstart: 100 real LFW face crops from the scikit-image wheel (no download), resized
# to 32x32, then a small StyleGAN2 for a few minutes (--preset=quickstart:
# sg2tf/presets/quickstart.flags). Rerunning
# it resumes (and finishes at once when the run is complete).
QUICKSTART_DIR := runs/quickstart

# Never fails because of the ops: if they cannot be built it says so in one line and the
# quickstart runs on the reference ops (e.g. `CXX=false make quickstart`).
quickstart: venv
	$(PY) -m sg2tf.custom_ops.build --allow-failure
	$(PY) -m sg2tf.dataset_tool.quickstart $(QUICKSTART_DIR)/lfw_faces.npy
	test -d $(QUICKSTART_DIR)/dataset || $(VENV)/bin/sg2tf-dataset create_from_npy \
	    $(QUICKSTART_DIR)/dataset $(QUICKSTART_DIR)/lfw_faces.npy --resize --resolution=32
	$(VENV)/bin/sg2tf-train --preset=quickstart
	@echo "Done: $(QUICKSTART_DIR)/fakes*.png, reals.png; tensorboard --logdir $(QUICKSTART_DIR)"

# Strict where a C++ compiler exists: an op build failure fails the suite. Without one (or
# with SG2TF_DISABLE_CUSTOM_OPS=1) the suite runs on the reference ops.
test: venv
	$(PY) -m sg2tf.custom_ops.build --allow-missing-compiler
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist=loadscope $(PYTEST_ARGS)

bench: ops
	$(PY) bench/ops.py

# The CUDA kernels checked against NumPy and timed against the copy roofline and PyTorch
# (tests/gpu/README.md). Needs nvcc, NumPy and CuPy (PyTorch optional), not TensorFlow or
# the venv: plain $(PYTHON), as on GPU machines that have no TensorFlow.
GPU_CHECK_JSON ?= gpu_check.json
GPU_CHECK_ARGS ?=
gpu-check:
	$(PYTHON) tests/gpu/run_gpu_check.py --json $(GPU_CHECK_JSON) $(GPU_CHECK_ARGS)

clean:
	rm -rf $(SG2TF_CACHE_DIR) build *.egg-info
