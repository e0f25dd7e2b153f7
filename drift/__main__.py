"""`python -m drift baseline|run`: build a baseline from reference requests; run the drift job on demand.

  python -m drift baseline --reference requests.jsonl --out baseline.json   # one v2 request (JSON) per line
  python -m drift baseline --reference requests.jsonl --responses responses.jsonl --output probabilities=classes \
      --out baseline.json   # also watch the predictions (the model's v2 response to each request, same order)
  python -m drift baseline --payload openai --reference requests.jsonl [--responses responses.jsonl] \
      --out baseline.json   # an LLM's: one OpenAI chat or completions request body per line, and the server's
                            # response to each, same order (a JSON object, or a JSON string holding a streamed
                            # response's event-stream text)
  python -m drift run --bucket B --capture-prefix P --baseline-key K --deployment D [--window-minutes 60] [--region R]
      [--payload tensor|openai]

Exit codes, as `python -m infra.ops`: 0 done; 1 a capture or baseline that cannot be read, or AWS refused or failed;
2 bad input (arguments, missing files, no AWS region, no AWS credentials). Every failure is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import llm
from .baseline import DEFAULT_PAYLOAD, PAYLOAD_KINDS, BaselineError, build_baseline
from .capture import OUTPUT_KINDS, CaptureFormatError, prediction_features, request_features


def _json_lines(path: Path) -> list[tuple[int, dict]]:
    bodies = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            bodies.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            raise CaptureFormatError(str(path), number, f"not JSON ({error.msg})") from None
    return bodies


def _reference_rows(path: Path) -> list[dict[str, float]]:
    rows = []
    for number, body in _json_lines(path):
        try:
            rows.append(request_features(body))
        except ValueError as error:
            raise CaptureFormatError(str(path), number, str(error)) from None
    return rows


def _prediction_rows(path: Path, outputs: dict[str, str]) -> tuple[list[dict[str, float]], dict[str, int]]:
    """Prediction features of the reference responses, and each class output's number of classes."""
    rows, classes = [], {}
    for number, body in _json_lines(path):
        try:
            rows += prediction_features(body, outputs)
        except ValueError as error:
            raise CaptureFormatError(str(path), number, str(error)) from None
        for tensor in body.get("outputs", []):
            if outputs.get(tensor.get("name")) == "classes":
                classes[tensor["name"]] = int((tensor.get("shape") or [0])[-1])
    return rows, classes


def _openai_rows(requests: Path, responses: Path | None) -> list[dict[str, float]]:
    """Rows of reference LLM traffic: each request's, with the prompt tokens its response reports, and each
    response's prediction row. Requests and responses pair by line, so their counts must agree."""
    bodies = _json_lines(requests)
    answers = _json_lines(responses) if responses else None
    if answers is not None and len(answers) != len(bodies):
        raise BaselineError(f"{requests} has {len(bodies)} request(s) and {responses} {len(answers)} response(s): give "
                            f"the server's response to each request, in the same order")
    rows = []
    for index, (number, body) in enumerate(bodies):
        try:
            request = llm.request_features(body)
        except ValueError as error:
            raise CaptureFormatError(str(requests), number, str(error)) from None
        if answers is None:
            rows.append(request)
            continue
        answer_number, answer = answers[index]
        try:
            completion = (llm.streamed_completion(answer) if isinstance(answer, str) else llm.completion_of(answer))
        except ValueError as error:
            raise CaptureFormatError(str(responses), answer_number, str(error)) from None
        from_response, prediction = llm.response_features(completion)
        rows += [{**request, **from_response}, prediction]
    return rows


def _outputs(items: list[str]) -> dict[str, str]:
    outputs = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in OUTPUT_KINDS:
            raise ValueError(f"--output must be NAME=classes or NAME=values, got {item!r}")
        outputs[name] = kind
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drift", description=(__doc__ or "").splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    baseline = commands.add_parser("baseline", help="build a baseline from reference requests")
    baseline.add_argument("--reference", type=Path, required=True, help="JSON Lines, one request each (a v2 "
                          "inference request, or with --payload openai an OpenAI chat or completions body)")
    baseline.add_argument("--out", type=Path, required=True)
    baseline.add_argument("--bins", type=int, default=10)
    baseline.add_argument("--payload", choices=PAYLOAD_KINDS, default=DEFAULT_PAYLOAD,
                          help="what the bodies are: v2 tensors (default) or an LLM's OpenAI-compatible bodies")
    baseline.add_argument("--responses", type=Path, help="JSON Lines, the model's response to each reference "
                          "request: watch the predictions too (openai: a JSON object, or a JSON string holding a "
                          "streamed response's event-stream text)")
    baseline.add_argument("--output", action="append", default=[], metavar="NAME=classes|values",
                          help="an output to watch: a classifier's scores (class shares) or a regressor's values "
                          "(tensor payloads)")
    run = commands.add_parser("run", help="compare the last window of captures with the baseline, publish metrics")
    run.add_argument("--bucket", required=True)
    run.add_argument("--capture-prefix", required=True, help="…/<endpoint>/<variant>/ under the capture destination")
    run.add_argument("--baseline-key", required=True)
    run.add_argument("--deployment", required=True)
    run.add_argument("--window-minutes", type=int, default=60)
    run.add_argument("--region", default=None)
    run.add_argument("--payload", choices=PAYLOAD_KINDS, default=DEFAULT_PAYLOAD,
                     help="what the captured bodies are (the deployment's payload kind)")
    args = parser.parse_args(argv)

    try:
        if args.command == "baseline":
            if not args.reference.is_file():
                print(f"reference file {args.reference} not found", file=sys.stderr)
                return 2
            if args.payload == "openai":
                return _openai_baseline(args)
            outputs = _outputs(args.output)
            if bool(outputs) != bool(args.responses):
                print("--responses and --output go together (the responses to read, the outputs to watch)",
                      file=sys.stderr)
                return 2
            rows, classes = _reference_rows(args.reference), {}
            if args.responses:
                if not args.responses.is_file():
                    print(f"responses file {args.responses} not found", file=sys.stderr)
                    return 2
                predictions, classes = _prediction_rows(args.responses, outputs)
                rows += predictions
            result = build_baseline(rows, bins=args.bins, outputs=outputs, classes=classes)
            args.out.write_text(json.dumps(result))
            print(f"baseline of {result['reference_count']} requests, features: {', '.join(result['features'])}"
                  f" -> {args.out}")
            return 0
        return _run(args)
    except (CaptureFormatError, BaselineError) as error:
        print(f"drift: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # a malformed --output
        print(f"drift: {error}", file=sys.stderr)
        return 2


def _openai_baseline(args: argparse.Namespace) -> int:
    """An LLM's baseline: no --output to name (the completion features are always watched when responses are
    given)."""
    if args.output:
        print("--output names a tensor output; an openai baseline watches the completions in --responses",
              file=sys.stderr)
        return 2
    if args.responses and not args.responses.is_file():
        print(f"responses file {args.responses} not found", file=sys.stderr)
        return 2
    result = build_baseline(_openai_rows(args.reference, args.responses), bins=args.bins, payload="openai")
    args.out.write_text(json.dumps(result))
    print(f"baseline of {result['reference_count']} openai requests, features: {', '.join(result['features'])}"
          f" -> {args.out}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """The drift job on demand, with the AWS environment's failures said as `python -m infra.ops` says them."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from .job import DriftJob

    try:
        session = boto3.Session(region_name=args.region)
        if not session.region_name:  # CloudWatch has no global endpoint: say so before any call
            print("drift: no AWS region (pass --region, or set AWS_REGION or AWS_DEFAULT_REGION, or AWS_PROFILE with "
                  "a region)", file=sys.stderr)
            return 2
        if session.get_credentials() is None:
            raise NoCredentialsError()
        job = DriftJob(args.bucket, args.capture_prefix, args.baseline_key, args.deployment, args.window_minutes,
                       payload=args.payload)
        results = job.run(session.client("s3"), session.client("cloudwatch"))
    except NoCredentialsError:
        print("drift: no AWS credentials (set AWS_PROFILE or run `aws sso login`)", file=sys.stderr)
        return 2
    except ClientError as error:
        info = error.response.get("Error", {})
        print(f"drift: AWS refused {error.operation_name}: {info.get('Code')}: {info.get('Message')}", file=sys.stderr)
        return 1
    except BotoCoreError as error:
        print(f"drift: {error}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.feature:24} psi={r.psi:.4f} ks={r.ks_statistic:.4f} p={r.ks_pvalue:.2e} n={r.count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
