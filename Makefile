# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create the virtualenv .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo quickstart test bench clean-venv

# The demo's settings: SIBERT-tiny on the shipped corpus, sized for a 2-core CPU; the encoder's
# SGDClip at the sweep's best eta and lambda for 2,000 steps (docs/reproduction.md, docs/sgdclip.md).
# The paper's own settings (a million steps) are pretrain.py's defaults.
DEMO_DIR ?= runs/demo
DEMO_FLAGS ?= --model=sibert --config=tiny \
	--text_files=official/nlp/corpus/train.txt --eval_text_files=official/nlp/corpus/heldout.txt \
	--eval_batches=16 --max_seq_length=64 --max_predictions_per_seq=10 --global_batch_size=32 \
	--train_steps=2000 --steps_per_epoch=200 --learning_rate=32 --weight_decay=3e-6 --lr_decay_at=0.9 \
	--dropout=0 --head_learning_rate=3e-3 --warmup_steps=300

# TensorFlow (requirements.txt, which official/ needs) plus the JAX and PyTorch
# CPU wheels, so that `make test` checks the library on all three backends.
$(VENV)/.installed: setup.py requirements.txt requirements-jax.txt requirements-torch.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-jax.txt -r requirements-torch.txt
	$(PY) -m pip install -q -e .
	touch $@

venv: $(VENV)/.installed

# Pretrains SIBERT-tiny (resumes if $(DEMO_DIR) holds a checkpoint), exports it,
# and fills in [MASK]s in held-out sentences with the exported SavedModel.
demo: venv
	$(PY) -m official.nlp.pretrain $(DEMO_FLAGS) --model_dir=$(DEMO_DIR)
	$(PY) -m official.nlp.fill_mask --export_dir=$(DEMO_DIR)/export --examples=10

quickstart: venv
	$(PY) examples/quickstart.py

# pytest exits 5 when it collects no test: make then fails, as it should.
# The run is on TensorFlow; tests/test_backends.py reruns the backend-neutral
# suites under KERAS_BACKEND=jax and =torch in subprocesses (docs/backends.md).
test: venv
	$(PY) -m pytest -q tests

bench: venv
	$(PY) benchmarks/optimizer_step.py

# The API reference and the guides (mkdocs.yml): installs requirements-docs.txt into .venv, then builds into site/
# with warnings as errors (a broken link or cross-reference, or an argument missing from a docstring's Args, fails).
.PHONY: docs
$(VENV)/.docs-installed: $(VENV)/.installed requirements-docs.txt
	$(PY) -m pip install -q -r requirements-docs.txt
	touch $@

docs: $(VENV)/.docs-installed
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict

clean-venv:
	rm -rf $(VENV)
