"""Language models (vLLM on KServe): what the tensor rules cannot see. The runtime stays offline, the fleet scales on
vLLM's own queue, and answers stream through the gateway. Mandatory in prod, advisory in dev."""

from components import vllm

from ..framework import as_list, is_prod, of_type, resource_rule, stack_rule

SERVING_RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
INFERENCE_SERVICE = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
INTEGRATION = "aws:apigateway/integration:Integration"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
"""Without these a vLLM pod may reach Hugging Face's hub (a model or tokenizer name it cannot find locally) and
vLLM's usage-stats server: egress on 443 is open for S3 and STS, so only the runtime's settings keep it in."""
GENERATION_PATHS = tuple(route for route in vllm.ROUTES if route.endswith("completions"))


def runs_vllm(container) -> bool:
    words = [str(w) for w in [*as_list((container or {}).get("command")), *as_list((container or {}).get("args"))]]
    return any(w == "vllm" or w.endswith("/vllm") for w in words) or any("vllm.entrypoints" in w for w in words)


def vllm_runtimes(resources) -> dict[tuple[str, str], object]:
    """(namespace, name) of every ServingRuntime whose container runs vLLM."""
    found = {}
    for runtime in of_type(resources, SERVING_RUNTIME):
        metadata = runtime.props.get("metadata") or {}
        if any(runs_vllm(c) for c in as_list((runtime.props.get("spec") or {}).get("containers"))):
            found[(metadata.get("namespace"), metadata.get("name"))] = runtime
    return found


def vllm_services(resources) -> list:
    runtimes = vllm_runtimes(resources)
    services = []
    for isvc in of_type(resources, INFERENCE_SERVICE):
        metadata = isvc.props.get("metadata") or {}
        model = ((isvc.props.get("spec") or {}).get("predictor") or {}).get("model") or {}
        if (metadata.get("namespace"), model.get("runtime")) in runtimes:
            services.append(isvc)
    return services


def _level_words(config) -> str:
    return "in prod" if is_prod(config) else "(advice in dev)"


@resource_rule("llm-runtime-offline", types=[SERVING_RUNTIME],
               description="A vLLM runtime never reaches a model hub or vLLM's usage server: weights come from the "
                           "stack's bucket, and nothing about the traffic leaves the VPC.",
               fix="Set HF_HUB_OFFLINE=1 and VLLM_NO_USAGE_STATS=1 in the runtime container's env "
                   "(components/model_servers.py VLLM_ENV does).")
def llm_runtime_offline(props, config):
    for container in as_list((props.get("spec") or {}).get("containers")):
        if not runs_vllm(container):
            continue
        env = {e.get("name"): str(e.get("value")) for e in as_list(container.get("env"))}
        missing = sorted(k for k, v in OFFLINE_ENV.items() if env.get(k) != v)
        if missing:
            yield (f"runtime {(props.get('metadata') or {}).get('name')} runs vLLM without {', '.join(missing)}=1 "
                   f"{_level_words(config)}")


@stack_rule("llm-scales-on-queue",
            description="A vLLM InferenceService scales on vLLM's queue (waiting requests), the signal that a "
                        "replica is full: CPU and request counts do not say when a GPU's batch is.",
            fix="Declare a KEDA ScaledObject on the predictor with a prometheus trigger over "
                "vllm:num_requests_waiting (KServeService does for runtime vllm).")
def llm_scales_on_queue(resources, config):
    scalers = {}
    for scaler in of_type(resources, SCALED_OBJECT):
        spec = scaler.props.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        queries = [str((t.get("metadata") or {}).get("query", "")) for t in as_list(spec.get("triggers"))
                   if t.get("type") == "prometheus"]
        scalers[((scaler.props.get("metadata") or {}).get("namespace"), target)] = queries
    for isvc in vllm_services(resources):
        metadata = isvc.props.get("metadata") or {}
        queries = scalers.get((metadata.get("namespace"), f"{metadata.get('name')}-predictor"))
        if queries is None:
            yield f"InferenceService {metadata.get('name')} (vLLM) has no KEDA scaler {_level_words(config)}", isvc.urn
        elif not any(vllm.NUM_REQUESTS_WAITING in q for q in queries):
            yield (f"InferenceService {metadata.get('name')} (vLLM) does not scale on "
                   f"{vllm.NUM_REQUESTS_WAITING} {_level_words(config)}"), isvc.urn


@resource_rule("llm-answers-stream", types=[INTEGRATION],
               description="The gateway streams a language model's answers from a proxy integration: buffered, a "
                           "client sees nothing until the whole answer is written, and a long one is cut at the "
                           "integration timeout.",
               fix="Set response_transfer_mode STREAM on the HTTP_PROXY integration of /chat/completions and "
                   "/completions (components/openai_routes.py).")
def llm_answers_stream(props, config):
    uri = str(props.get("uri") or "")
    if props.get("type") == "HTTP_PROXY" and uri.endswith(GENERATION_PATHS) \
            and props.get("responseTransferMode") != "STREAM":
        yield f"the proxy integration to {uri} buffers the answer {_level_words(config)}"
