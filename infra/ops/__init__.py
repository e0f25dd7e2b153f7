"""Operator tools around `pulumi up` (boto3): preflight, model release, rollout control, drift on demand.

Entry point: `python -m infra.ops --help`. Every command reads the same validated stack config as the program, so the
names it looks for (endpoint, alarms, bucket, capture prefix) are the ones the stack declares.
"""
