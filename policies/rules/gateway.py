"""The front door: every route authenticated, throttled and logged; prod behind a WAF."""

from ..framework import is_prod, of_type, resource_rule, stack_rule

STAGE = "aws:apigateway/stage:Stage"


@resource_rule("api-routes-authenticated", types=["aws:apigateway/method:Method"],
               description="Every API route requires an API key, and in prod an identity (IAM or JWT) as well.",
               fix="Set gateway.authorization to iam or jwt (prod) and keep api_key_required=True on the method.")
def api_routes_authenticated(props, config):
    if props.get("apiKeyRequired") is not True and props.get("authorization") in (None, "NONE"):
        yield f"{props.get('httpMethod')} is open to anyone: no API key and no authorizer"
    elif is_prod(config) and props.get("authorization") in (None, "NONE"):
        yield f"{props.get('httpMethod')} identifies callers by API key only (keys are for metering, not identity)"


@stack_rule("api-throttling", description="Every API stage has method throttling and a usage plan with limits.",
            fix="Declare gateway tiers (rate_per_second, burst, quota_per_day); mlserve sets method throttling to "
                "their sum and one usage plan per tier.")
def api_throttling(resources, config):
    for stage in of_type(resources, STAGE):
        settings = [s for s in of_type(resources, "aws:apigateway/methodSettings:MethodSettings")
                    if stage in s.property_dependencies.get("stageName", [])]
        if not any((s.props.get("settings") or {}).get("throttlingRateLimit") and
                   (s.props.get("settings") or {}).get("throttlingBurstLimit") for s in settings):
            yield f"stage {stage.name} has no method throttling", stage.urn
        plans = [p for p in of_type(resources, "aws:apigateway/usagePlan:UsagePlan")
                 if stage in p.property_dependencies.get("apiStages", [])]
        if not any((p.props.get("throttleSettings") or {}).get("rateLimit") for p in plans):
            yield f"stage {stage.name} is in no usage plan with a throttle", stage.urn


@resource_rule("api-access-logs", types=[STAGE], description="API stages write access logs.",
               fix="Set access_log_settings (destination: a KMS-encrypted log group, format: JSON).")
def api_access_logs(props, config):
    settings = props.get("accessLogSettings") or {}
    if not settings.get("destinationArn") or not settings.get("format"):
        yield "no access log destination and format"


@stack_rule("prod-api-waf", description="Prod API stages are associated with a WAF web ACL.",
            fix="Keep environment prod: mlserve associates a WAFv2 web ACL (per-IP rate rule, AWS managed rules) "
                "with every prod stage.")
def prod_api_waf(resources, config):
    if not is_prod(config):
        return
    protected = {d.urn for a in of_type(resources, "aws:wafv2/webAclAssociation:WebAclAssociation")
                 for d in a.property_dependencies.get("resourceArn", [])}
    for stage in of_type(resources, STAGE):
        if stage.urn not in protected:
            yield f"stage {stage.name} has no WAF web ACL", stage.urn
