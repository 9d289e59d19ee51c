# The two commands of the README: `make demo` (the main job) and `make test`.
# Both create the virtualenv .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: venv demo test bench clean-venv

$(VENV)/.installed: setup.py requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(PY) examples/quickstart.py

# pytest exits 5 when it collects no test: make then fails, as it should.
test: venv
	$(PY) -m pytest -q tests

bench: venv
	$(PY) benchmarks/optimizer_step.py

clean-venv:
	rm -rf $(VENV)
