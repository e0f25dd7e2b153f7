"""python -m infra.ops: the operator's tools around `pulumi up`.

  preflight      --stack S                         the phase; quotas, artifacts, images, instance types; exit 1 on
                                                    anything this pulumi up needs
  release-model  --stack S --deployment D --model-dir DIR [--metrics FILE] [--llm]
                 a tensor model's spec.json and model.onnx, or (runtime vllm) a Hugging Face weights folder
  rollout        status|promote|rollback --stack S --deployment D ...
  drift run      --stack S --deployment D [--window-minutes N]
  profile        --stack S --deployment D --url URL [--header K:V] [--sigv4] [--concurrency N ...] [--report F]
                 a language model (runtime vllm): TTFT, ITL and tokens/s [--prompt-tokens N] [--max-tokens N]
  verify         --stack S [--deployment D ...] [--header K:V] [--url D=URL] [--spec F] [--skip-http]
                 after pulumi up: inference through each gateway, alarms, scaling, drift schedule, KServe targets
  bootstrap      [--stack S ...] [--region R] [--backend s3|pulumi-cloud] [--state-bucket B] [--key-alias A]
                 the Pulumi state bucket and secrets key of an account (idempotent); prints the login lines

Every command takes --endpoint-url (a local AWS API such as moto on 127.0.0.1) and --config-file (a stack file
elsewhere). Exit codes: 0 done, 1 a check or a rollout failed, 2 bad input (config, arguments, missing files).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from components.names import (
    DRIFT_METRIC_NAMESPACE,
    captured_files_prefix,
    deployment_name,
    endpoint_name,
)
from components.weights_manifest import MANIFEST
from infra.config.errors import ConfigError
from infra.config.loader import load_file, load_stack
from infra.config.models import KServeDeployment, SageMakerDeployment, StackConfig

from .clients import Clients
from .report import OpsError, console, print_checks


def _common(parser: argparse.ArgumentParser, deployment: bool = False) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--config-file", type=Path, help="a stack file other than Pulumi.<stack>.yaml")
    parser.add_argument("--endpoint-url", help="AWS API endpoint, e.g. http://127.0.0.1:5000 for moto")
    if deployment:
        parser.add_argument("--deployment", required=True, help="a deployment name from the stack's config")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m infra.ops", description=(__doc__ or "").splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(__doc__ or "").split("\n", 2)[2])
    commands = parser.add_subparsers(dest="command", required=True)

    preflight = commands.add_parser("preflight", help="check quotas, artifacts, images before pulumi up")
    _common(preflight)
    preflight.add_argument("--allow-unverified", action="store_true",
                           help="pass when a check could not be made (e.g. Service Quotas not reachable); say so")

    release = commands.add_parser("release-model", help="package, upload, register and approve a model version")
    _common(release, deployment=True)
    release.add_argument("--model-dir", type=Path, required=True,
                         help="a tensor model: spec.json, model.onnx, optional engines; a language model (runtime "
                              "vllm): its Hugging Face folder (config.json, tokenizer files, *.safetensors)")
    release.add_argument("--llm", action="store_true",
                         help="release a language model's weights folder (the deployment's runtime vllm says so "
                              "too; given for a tensor deployment, refused)")
    release.add_argument("--metrics", type=Path, help="evaluation metrics (JSON) registered with the version")

    rollout = commands.add_parser("rollout", help="follow, promote or roll back a deployment (SageMaker or KServe)")
    actions = rollout.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="the endpoint, its variants, the blue/green state, the guard alarms")
    _common(status, deployment=True)
    promote = actions.add_parser("promote", help="shift traffic to a variant in steps, rolling back on any alarm")
    _common(promote, deployment=True)
    promote.add_argument("--variant", help="SageMaker: the variant to promote (KServe: always the canary)")
    promote.add_argument("--steps", type=float, nargs="+", default=[10.0, 50.0], help="percent per step; 100 is added")
    promote.add_argument("--bake-seconds", type=float, default=600.0, help="watch the alarms this long per step")
    promote.add_argument("--poll-seconds", type=float, default=15.0)
    rollback = actions.add_parser("rollback", help="all traffic to one variant now (or the previous endpoint config)")
    _common(rollback, deployment=True)
    rollback.add_argument("--to-variant", help="default: the first (primary) variant")
    for action in (status, promote, rollback):
        action.add_argument("--kube-context", help="KServe: the kubeconfig context (default: the current one)")

    drift = commands.add_parser("drift", help="drift statistics on demand")
    drift_actions = drift.add_subparsers(dest="action", required=True)
    run = drift_actions.add_parser("run", help="compare recent captures with the baseline and publish the metrics")
    _common(run, deployment=True)
    run.add_argument("--window-minutes", type=int, default=60)

    check = commands.add_parser("verify", help="the smoke test after pulumi up: each deployment answers and is "
                                "watched")
    _common(check)
    check.add_argument("--deployment", action="append", default=[], metavar="D",
                       help="verify only this deployment (repeatable; default: all)")
    check.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                       help="sent with every request, e.g. 'Authorization: Bearer <token>' for jwt (repeatable)")
    check.add_argument("--url", action="append", default=[], metavar="DEPLOYMENT=URL",
                       help="call this base URL (the stage URL's equivalent) instead of the one the gateway names, "
                            "e.g. through a tunnel")
    check.add_argument("--spec", type=Path, help="the model's spec.json (default: read from the released tarball)")
    check.add_argument("--skip-http", action="store_true",
                       help="check only the AWS and Kubernetes side (the gateway is not reachable from here)")
    check.add_argument("--kube-context", help="KServe: the kubeconfig context (default: the current one)")

    boot = commands.add_parser("bootstrap", help="prepare an account: the Pulumi state bucket and secrets key")
    boot.add_argument("--stack", action="append", default=[], metavar="S",
                      help="a stack to print `pulumi stack init` for; its file's region is the default and its "
                           "account_id must be the caller's (repeatable)")
    boot.add_argument("--region", help="where the bucket and key live (default: the first --stack's region)")
    boot.add_argument("--backend", choices=["s3", "pulumi-cloud"], default="s3",
                      help="s3: a bucket and a KMS key in this account; pulumi-cloud: nothing to create, print the "
                           "login line")
    boot.add_argument("--state-bucket", help="default mlserve-pulumi-state-<account>-<region> (names are global)")
    boot.add_argument("--key-alias", default="mlserve-pulumi-secrets", help="the secrets key's alias, without alias/")
    boot.add_argument("--noncurrent-days", type=int, default=90, help="days an overwritten checkpoint is kept")
    boot.add_argument("--print-policy", action="store_true",
                      help="print the IAM policies bootstrap needs and pulumi needs to use the backend; change "
                           "nothing")
    boot.add_argument("--endpoint-url", help="AWS API endpoint, e.g. http://127.0.0.1:5000 for moto")

    profile = commands.add_parser("profile", help="measure capacity at the p99 SLO and print the config lines")
    _common(profile, deployment=True)
    profile.add_argument("--url", required=True,
                         help="the server: http://127.0.0.1:8080, or the API's stage URL https://.../v1")
    profile.add_argument("--header", action="append", default=[], metavar="NAME:VALUE",
                         help="sent with every request, e.g. x-api-key:$KEY (repeatable)")
    profile.add_argument("--sigv4", action="store_true", help="sign requests for the gateway's IAM authorization")
    profile.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32],
                         help="requests in flight at each step of the sweep, in order")
    profile.add_argument("--seconds", type=float, help="per concurrency step (at most 120; default 10, a language "
                         "model 30: its requests last seconds each)")
    profile.add_argument("--max-requests", type=int, default=20_000, help="per concurrency step")
    profile.add_argument("--batch", type=int, default=1, help="samples per request")
    profile.add_argument("--json-tensors", action="store_true", help="send v2 JSON instead of binary tensors")
    profile.add_argument("--p99-ms", type=float, help="the SLO to meet (default: the deployment's slo.p99_latency_ms)")
    profile.add_argument("--report", type=Path, help="write the JSON report here")
    profile.add_argument("--spec", type=Path, help="the released model's spec.json: its inputs, for a server that "
                         "does not answer model metadata (the API gateway exposes only the infer route)")
    llm = profile.add_argument_group(
        "a language model (runtime vllm)", "streaming chat completions at --url: a vLLM server or pod "
        "(http://HOST:8000, /v1/chat/completions appended) or an OpenAI base URL ending in /v1, such as the gateway's "
        "stage URL with --header x-api-key:KEY (/chat/completions appended): time to first token (TTFT), inter-token "
        "latency (ITL) and output tokens per second against concurrency, held to slo.ttft_p99_ms and itl_p99_ms")
    llm.add_argument("--prompt-tokens", type=int, default=256, help="about this many prompt tokens per request")
    llm.add_argument("--max-tokens", type=int, default=128, help="output tokens per request (exactly: ignore_eos)")
    llm.add_argument("--ttft-p99-ms", type=float, help="default: the deployment's slo.ttft_p99_ms")
    llm.add_argument("--itl-p99-ms", type=float, help="default: the deployment's slo.itl_p99_ms")
    return parser


def parse_headers(items: list[str]) -> dict[str, str]:
    headers = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise OpsError(f"--header must be NAME:VALUE, got {item!r}")
        headers[name.strip()] = value.strip()
    return headers


def run_verify(args, cfg: StackConfig, clients: Clients, out) -> int:
    from .verify import KubernetesObjects, verify

    urls = {}
    for item in args.url:
        name, sep, url = item.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise OpsError(f"--url must be DEPLOYMENT=http(s)://..., got {item!r}")
        urls[name] = url
    results = verify(cfg, args.stack, clients, args.deployment, headers=parse_headers(args.header), urls=urls,
                     spec=args.spec, http=not args.skip_http, kube=lambda: KubernetesObjects(args.kube_context))
    failed, unverified = [], []
    for name, checks in results.items():
        print_checks(checks, f"verify: stack {args.stack}, deployment {name}", out)
        failed += [f"{name}: {c.area} {c.subject}" for c in checks if c.status == "fail"]
        unverified += [f"{name}: {c.area} {c.subject}" for c in checks if c.status == "unverified"]
    total = sum(len(c) for c in results.values())
    if args.skip_http:
        out.print("gateway checks skipped (--skip-http): no inference was sent", markup=False)
    if unverified:
        out.print(f"not verified ({len(unverified)}): {'; '.join(unverified)}", markup=False, soft_wrap=True)
    if failed:
        out.print(f"verify: {total - len(failed) - len(unverified)} passed, {len(failed)} failed: "
                  f"{'; '.join(failed)}", markup=False, soft_wrap=True)
        return 1
    out.print(f"verify: all {total} checks passed" if not unverified else
              f"verify: {total - len(unverified)} passed, none failed", markup=False)
    return 0


def run_profile(args, cfg: StackConfig, out) -> int:
    import asyncio
    import json

    from .profile import (
        LEGEND,
        MAX_STEP_SECONDS,
        Target,
        choose,
        config_lines,
        local_measurement_warning,
        report,
        sweep,
    )

    if not args.url.startswith(("http://", "https://")):
        raise OpsError(f"--url must start with http:// or https://, got {args.url!r}")
    deployment = deployment_of(cfg, args.deployment)
    if deployment.is_llm:
        return run_profile_llm(args, cfg, deployment, out)
    llm_options = [flag for flag, given in (("--ttft-p99-ms", args.ttft_p99_ms), ("--itl-p99-ms", args.itl_p99_ms))
                   if given is not None]
    if llm_options:
        raise OpsError(f"{' and '.join(llm_options)} are a language model's (runtime vllm); {deployment.name} is a "
                       "tensor model: its SLO is --p99-ms")
    args.seconds = 10.0 if args.seconds is None else args.seconds
    if not 0 < args.seconds <= MAX_STEP_SECONDS or any(not 1 <= c <= 512 for c in args.concurrency) \
            or args.max_requests < 1 or args.batch < 1:
        raise OpsError(f"--seconds must be in (0, {MAX_STEP_SECONDS}], each --concurrency in [1, 512], "
                       "--max-requests and --batch at least 1")
    headers = parse_headers(args.header)
    index = cfg.deployments.index(deployment)
    p99_ms = args.p99_ms or deployment.slo.p99_latency_ms
    model = deployment.model.triton_model_name
    target = Target(args.url, model, headers, cfg.region if args.sigv4 else None)
    warning = local_measurement_warning(args.url, cfg, deployment)
    if warning:
        print(f"profile: warning: {warning}", file=sys.stderr, flush=True)
    try:
        steps = asyncio.run(sweep(target, sorted(set(args.concurrency)), args.seconds, args.max_requests,
                                  args.batch, binary=not args.json_tensors, spec=args.spec))
    except ValueError as error:
        raise OpsError(str(error)) from None
    except OSError as error:
        raise OpsError(f"cannot reach {args.url}: {error}") from None
    chosen = choose(steps, p99_ms)
    out.print(LEGEND, soft_wrap=True)
    for step in steps:
        ok = "meets" if step is chosen else ("ok" if step.errors == 0 and step.percentile(99) <= p99_ms else "over")
        out.print(f"concurrency {step.concurrency:>4}: {step.throughput:8.1f} req/s  p50 {step.percentile(50):7.1f} "
                  f"p95 {step.percentile(95):7.1f} p99 {step.percentile(99):7.1f} ms  errors {step.errors}  {ok}")
    document = report(target, steps, p99_ms, chosen, not args.json_tensors, args.batch)
    if args.report:
        args.report.write_text(json.dumps(document, indent=2) + "\n")
        out.print(f"report: {args.report}")
    if chosen is None:
        out.print(f"no step met p99 <= {p99_ms:g} ms without errors: lower the concurrency, or relax the SLO")
        return 1
    out.print(f"capacity within p99 {p99_ms:g} ms: {chosen.throughput:.1f} req/s at concurrency {chosen.concurrency}"
              f" (batch {args.batch}); paste:")
    for line in config_lines(args.stack, index, deployment.backend, chosen):
        out.print(f"  {line}", soft_wrap=True)
    if warning:
        out.print("(measured on this machine, not on the deployment's instance type: see the warning above)")
    return 0


def llm_config_commands(stack: str, index: int, deployment, lines: list[str]) -> list[str]:
    """profile_llm's `key: value` lines as `pulumi config set` commands for this deployment. A KServe language model
    scales on vLLM's queue, not on concurrency: its target_concurrency is said, not given to paste."""
    commands = []
    for line in lines:
        key, sep, value = line.partition(": ")
        if not sep:
            raise ValueError(f"profile_llm.config_lines gave {line!r}, not `key: value`")
        if key == "autoscaling.target_concurrency" and isinstance(deployment, KServeDeployment):
            commands.append(f"# not to paste: {value} streams per replica met the SLOs, but KServe scales a language "
                            "model on vLLM's waiting requests and KV-cache use (llm.scale_at_waiting, "
                            "llm.scale_at_kv_cache_percent), not on autoscaling.target_concurrency")
            continue
        commands.append(f"pulumi config set --stack {stack} --path 'mlserve:deployments[{index}].{key}' {value}")
        if key == "autoscaling.target_concurrency":
            others = [k for k in ("target_invocations_per_instance", "max_rps_per_instance_at_slo")
                      if getattr(deployment.autoscaling, k) is not None]
            commands += [f"pulumi config rm --stack {stack} --path 'mlserve:deployments[{index}].autoscaling.{k}'  "
                         "# exactly one autoscaling target" for k in others]
    return commands


def run_profile_llm(args, cfg: StackConfig, deployment, out) -> int:
    """profile for runtime vllm: infra/ops/profile_llm.py's sweep, recommendation and lines, wired to the stack."""
    import asyncio
    import json

    from .profile import local_measurement_warning
    from .profile_llm import LEGEND, MAX_STEP_SECONDS, LlmTarget, config_lines, recommend, report, step_line, sweep

    tensor_options = [flag for flag, given in (("--sigv4", args.sigv4), ("--batch", args.batch != 1),
                                               ("--json-tensors", args.json_tensors), ("--spec", args.spec),
                                               ("--p99-ms", args.p99_ms)) if given]
    if tensor_options:
        raise OpsError(f"{', '.join(tensor_options)}: a tensor model's option(s); {deployment.name} is a language "
                       "model (runtime vllm): its SLOs are --ttft-p99-ms and --itl-p99-ms, and a gateway is called "
                       "with an API key (--header x-api-key:KEY), not SigV4")
    llm = deployment.llm
    if llm is None:  # the config rules require it for runtime vllm
        raise OpsError(f"{deployment.name} is runtime vllm without an llm block")
    seconds = 30.0 if args.seconds is None else args.seconds
    if not 0 < seconds <= MAX_STEP_SECONDS or any(not 1 <= c <= 512 for c in args.concurrency) \
            or args.max_requests < 1 or args.prompt_tokens < 1 or args.max_tokens < 1:
        raise OpsError(f"--seconds must be in (0, {MAX_STEP_SECONDS}], each --concurrency in [1, 512], "
                       "--max-requests, --prompt-tokens and --max-tokens at least 1")
    if args.prompt_tokens + args.max_tokens > llm.max_model_len:
        raise OpsError(f"--prompt-tokens {args.prompt_tokens} + --max-tokens {args.max_tokens} exceed the "
                       f"deployment's llm.max_model_len {llm.max_model_len}: vLLM would cut every answer short of "
                       "--max-tokens (finish_reason length), and the step would not measure what was asked")
    ttft = args.ttft_p99_ms or deployment.slo.ttft_p99_ms
    itl = args.itl_p99_ms or deployment.slo.itl_p99_ms
    if ttft is None or itl is None:  # the config rules require both for runtime vllm
        raise OpsError(f"{deployment.name} has no slo.ttft_p99_ms or slo.itl_p99_ms: give --ttft-p99-ms and "
                       "--itl-p99-ms")
    target = LlmTarget(args.url, llm.model_name(deployment.name), parse_headers(args.header))
    index = cfg.deployments.index(deployment)
    warning = local_measurement_warning(args.url, cfg, deployment)
    if warning:
        print(f"profile: warning: {warning}", file=sys.stderr, flush=True)
    try:
        steps = asyncio.run(sweep(target, sorted(set(args.concurrency)), seconds, args.max_requests,
                                  args.prompt_tokens, args.max_tokens))
    except ValueError as error:
        raise OpsError(str(error)) from None
    if not any(step.requests for step in steps):
        sample = next((s.error_samples[0] for s in steps if s.error_samples), "no request was sent")
        hint = ("; a SageMaker deployment's gateway answers in one piece and refuses stream: true, so profile a vLLM "
                "server of its image on its instance type directly" if isinstance(deployment, SageMakerDeployment)
                else "")
        raise OpsError(f"no request to {target.chat_url} was answered ({sample}): is the server up, --url its base "
                       f"(a server's, or an OpenAI base URL ending in /v1), and {target.model!r} the model it serves?{hint}")
    rec = recommend(steps, ttft, itl)
    out.print(LEGEND, soft_wrap=True, markup=False)
    for step in steps:
        out.print(step_line(step, rec), markup=False, soft_wrap=True)
        if step.error_samples:
            out.print(f"    errors, e.g.: {step.error_samples[0]}", markup=False, soft_wrap=True)
    if args.report:
        args.report.write_text(json.dumps(report(target, steps, rec, args.prompt_tokens, args.max_tokens), indent=2)
                               + "\n")
        out.print(f"report: {args.report}", markup=False)
    if rec["concurrency"] is None:
        out.print(f"{rec['reason']}: lower the concurrency, shorten --prompt-tokens/--max-tokens, or relax the SLOs",
                  markup=False, soft_wrap=True)
        return 1
    out.print(f"within TTFT p99 {ttft:g} ms and ITL p99 {itl:g} ms: {rec['tokens_per_second']:.1f} output tokens/s "
              f"per replica at concurrency {rec['concurrency']}; paste:", markup=False, soft_wrap=True)
    try:
        commands = llm_config_commands(args.stack, index, deployment, config_lines(rec))
    except ValueError as error:
        raise OpsError(str(error)) from None
    for line in commands:
        out.print(f"  {line}", markup=False, soft_wrap=True)
    if warning:
        out.print("(measured on this machine, not on the deployment's instance type: see the warning above)",
                  markup=False)
    return 0


def load(args) -> StackConfig:
    """The operator's tools act on real values: encrypted ones are read through the stack's secrets provider (the
    Pulumi CLI), or left unknown with a line saying which command shows them."""
    return load_file(args.config_file, decrypt=True) if args.config_file else load_stack(args.stack, decrypt=True)


def deployment_of(cfg: StackConfig, name: str):
    found = next((d for d in cfg.deployments if d.name == name), None)
    if found is None:
        raise OpsError(f"no deployment {name!r} in this stack; it has: {', '.join(d.name for d in cfg.deployments)}")
    return found


def run_bootstrap(args, out) -> int:
    import json

    from .bootstrap import bootstrap, bootstrap_policy, caller_account, check_names, default_bucket, state_user_policy

    configs = {stack: load_stack(stack) for stack in args.stack}
    region = args.region or next((c.region for c in configs.values()), None)
    if region is None:
        raise OpsError("give --region, or --stack S to use its region")
    check_names(args.state_bucket, args.key_alias, args.noncurrent_days)
    stacks = args.stack or ["<stack>"]
    if args.backend == "pulumi-cloud":
        out.print("Pulumi Cloud keeps the state and encrypts the secrets: nothing to create in AWS. Run:", markup=False)
        out.print("  pulumi login", markup=False)
        for stack in stacks:
            out.print(f"  pulumi stack init {stack}", markup=False, soft_wrap=True)
        return 0
    clients = Clients(region, args.endpoint_url)
    account = caller_account(clients)
    for stack, cfg in configs.items():
        if cfg.account_id and cfg.account_id != account:
            raise OpsError(f"stack {stack} pins account {cfg.account_id} but these credentials are account {account}: "
                           "bootstrap each account with its own credentials")
    bucket = args.state_bucket or default_bucket(account, region)
    if args.print_policy:
        out.print("# what `bootstrap` needs:", markup=False)
        out.print(json.dumps(bootstrap_policy(account, region, bucket, args.key_alias), indent=2), markup=False)
        out.print("# what `pulumi` needs to use the backend and the secrets provider:", markup=False)
        out.print(json.dumps(state_user_policy(account, region, bucket, args.key_alias), indent=2), markup=False)
        return 0
    run = bootstrap(clients, account, bucket, args.key_alias, args.noncurrent_days)
    for step in run.steps:
        out.print(f"{step.action:>9}  {step.subject}: {step.detail}", markup=False, soft_wrap=True)
    out.print(f"bootstrap: {run.changes} change(s) in account {account} ({region})" if run.changes else
              f"bootstrap: nothing changed: account {account} ({region}) was already bootstrapped", markup=False)
    out.print("then:", markup=False)
    out.print(f"  {run.login_line()}", markup=False, soft_wrap=True)
    for stack in stacks:
        out.print(f"  {run.stack_init_line(stack)}", markup=False, soft_wrap=True)
    return 0


def run_command(args) -> int:
    if args.command == "bootstrap":
        return run_bootstrap(args, console())
    cfg = load(args)
    clients = Clients(cfg.region, args.endpoint_url)
    out = console()
    if args.command == "profile":
        return run_profile(args, cfg, out)
    if args.command == "verify":
        return run_verify(args, cfg, clients, out)
    if args.command == "preflight":
        from .preflight import preflight

        checks = preflight(cfg, args.stack, clients)
        print_checks(checks, f"preflight: stack {args.stack} ({cfg.region}), mlserve:phase {cfg.phase}", out)
        failed = [c for c in checks if c.status == "fail"]
        unverified = [c for c in checks if c.status == "unverified"]
        todo = [c for c in checks if c.status == "todo"]
        if unverified and args.allow_unverified:
            out.print(f"[yellow]{len(unverified)} check(s) could not be made and were allowed by "
                      f"--allow-unverified[/]")
        bad = len(failed) + (0 if args.allow_unverified else len(unverified))
        out.print(f"preflight: {len(checks) - len(failed) - len(unverified) - len(todo)} passed, {len(failed)} failed, "
                  f"{len(unverified)} unverified" + (f", {len(todo)} to do before mlserve:phase all" if todo else ""))
        return 1 if bad else 0

    if args.command == "release-model":
        from .preflight import human_size
        from .release import config_commands, release_model

        release = release_model(cfg, args.stack, args.deployment, args.model_dir, clients, args.metrics, args.llm)
        verb = "released" if release.created else "already released (no new version)"
        out.print(f"{verb}: {release.uri}", markup=False, soft_wrap=True)
        if deployment_of(cfg, args.deployment).is_llm:
            out.print(f"  sha256 {release.sha256} (of {release.uri}{MANIFEST}: {release.files - 1} file(s), "
                      f"{human_size(release.size_bytes)})", markup=False, soft_wrap=True)
            out.print(f"  uploaded {release.written} of {release.files} object(s)" if release.written else
                      f"  nothing uploaded: all {release.files} object(s) were already there", markup=False)
        else:
            out.print(f"  sha256 {release.sha256}", markup=False)
        out.print(f"  model package {release.model_package_arn} (version {release.version}, Approved)",
                  markup=False, soft_wrap=True)
        out.print("deploy it with:")
        for line in config_commands(cfg, args.stack, args.deployment, release):
            out.print(f"  {line}", soft_wrap=True)
        out.print(f"  python -m infra.ops preflight --stack {args.stack} && pulumi up --stack {args.stack}",
                  soft_wrap=True)
        return 0

    deployment = deployment_of(cfg, args.deployment)
    endpoint = deployment_name(args.stack, deployment.name)
    component = None
    if isinstance(deployment, SageMakerDeployment) and deployment.hosting == "inference_components":
        # The component carries the deployment's name (and its alarms); the endpoint may be shared.
        component, endpoint = endpoint, endpoint_name(args.stack, deployment.endpoint_group)
    if args.command == "drift":
        if not deployment.drift.enabled or not deployment.drift.baseline_uri:
            raise OpsError(f"drift monitoring is off for {deployment.name}: set drift.enabled and drift.baseline_uri")
        from drift.baseline import BaselineError
        from drift.capture import CaptureFormatError
        from drift.job import DriftJob

        # What the captured bodies are, as the deployment's scheduled job reads them (MLSERVE_PAYLOAD_KIND).
        job = DriftJob(cfg.model_store.bucket, captured_files_prefix(endpoint),
                       deployment.drift.baseline_uri.split("/", 3)[3], deployment.name, args.window_minutes,
                       namespace=DRIFT_METRIC_NAMESPACE, payload="openai" if deployment.is_llm else "tensor")
        try:
            results = job.run(clients.s3, clients.cloudwatch)
        except (BaselineError, CaptureFormatError) as error:
            out.print(f"drift run: {error}")
            return 1
        for r in results:
            flag = "DRIFT" if r.psi >= deployment.drift.psi_alarm_threshold else "ok"
            out.print(f"{r.feature:24} psi={r.psi:.4f} ks={r.ks_statistic:.4f} p={r.ks_pvalue:.2e} n={r.count} {flag}")
        out.print(f"published {len(results)} metric(s) to CloudWatch namespace {job.namespace}"
                  + (" (OpenAI request and response bodies)" if job.payload == "openai" else ""), markup=False)
        return 0

    if isinstance(deployment, KServeDeployment):
        from .kserve_rollout import KServeRollout, KubernetesApi

        kserve = KServeRollout(KubernetesApi(args.kube_context), deployment.name, endpoint, out,
                               poll_seconds=getattr(args, "poll_seconds", 15.0))
        if args.action == "status":
            kserve.status()
            return 0
        if args.action == "promote":
            return 0 if kserve.promote(args.steps, args.bake_seconds) else 1
        kserve.rollback()
        return 0
    from .rollout import (
        Rollout,
        alarm_states,
        describe,
        describe_component,
        guard_alarm_names,
        print_component_status,
        print_status,
    )

    if component:
        if args.action != "status":
            raise OpsError(f"{deployment.name} is an inference component: a new model version rolls out through "
                           "`pulumi up`, copies replaced in batches and rolled back by SageMaker when a guard alarm "
                           "fires; to go back after it finished, revert the stack file and `pulumi up`")
        state = describe_component(clients, component, endpoint)
        print_component_status(state, alarm_states(clients, guard_alarm_names(component)), out)
        return 0
    if args.action == "status":
        print_status(describe(clients, endpoint), alarm_states(clients, guard_alarm_names(endpoint)), out)
        return 0
    rollout = Rollout(clients, endpoint, out, poll_seconds=getattr(args, "poll_seconds", 15.0))
    if args.action == "promote":
        if not args.variant:
            raise OpsError("--variant is required for a SageMaker deployment (the weighted variant to promote)")
        return 0 if rollout.promote(args.variant, args.steps, args.bake_seconds) else 1
    out.print(f"rolled back: {rollout.rollback(args.to_variant)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_command(args)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return 2
    except OpsError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except NoCredentialsError:
        print(f"{args.command}: no AWS credentials (set AWS_PROFILE or run `aws sso login`)", file=sys.stderr)
        return 2
    except ClientError as error:
        info = error.response.get("Error", {})
        print(f"{args.command}: AWS refused {error.operation_name}: {info.get('Code')}: {info.get('Message')}",
              file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
