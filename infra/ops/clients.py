"""boto3 clients for one region, optionally against a local endpoint (moto on 127.0.0.1 for the demo)."""

from __future__ import annotations

from dataclasses import dataclass, field

import boto3
from botocore.config import Config

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


@dataclass
class Clients:
    region: str
    endpoint_url: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __getattr__(self, service: str):
        """`clients.sagemaker`, `clients.s3`, `clients.service_quotas`, ...: one client per service, made on first use."""
        if service.startswith("_"):
            raise AttributeError(service)
        name = service.replace("_", "-")
        if name not in self._cache:
            self._cache[name] = boto3.client(name, region_name=self.region, endpoint_url=self.endpoint_url,
                                             config=_RETRIES)
        return self._cache[name]

    def inject(self, service: str, client) -> None:
        """Use this client for `service` (tests hand in a botocore Stubber-wrapped one)."""
        self._cache[service.replace("_", "-")] = client
