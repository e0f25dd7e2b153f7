# mlserve: every target sets itself up (a local .venv with pinned versions) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup plan test policy clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The main job on the embedded default: the offline plan of the dev stack (no AWS account, no Pulumi CLI).
plan: $(STAMP)
	$(PY) -m infra.plan --stack dev

## Every test: config rules, components under Pulumi mocks, policies, AWS API replays against moto.
test: $(STAMP)
	$(PY) -m pytest -q

## The policy pack against every stack, offline (what `pulumi preview --policy-pack policies` enforces).
policy: $(STAMP)
	@for stack in $$(ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/'); do \
		echo "== policy check: $$stack"; $(PY) -m policies.check --stack $$stack || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
