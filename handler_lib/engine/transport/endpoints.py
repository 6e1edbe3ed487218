"""Endpoints of SQS, SNS and EventBridge, as botocore 1.44's endpoint rule sets resolve them.

The rule sets (botocore/data/{sqs,sns,events}/*/endpoint-rule-set-1.json.gz) come down to the
service's name, the partition's DNS suffixes, and FIPS exceptions in AWS GovCloud. Only the
three partitions whose regions and suffixes are written here are answered (``PARTITIONS``);
anything else (an ISO region, a name no pattern matches, FIPS or dual-stack beside a
configured URL, a URL with a path) gives None and the factory uses botocore, which knows.
tests/unit/test_transport_endpoints.py asks botocore's own resolver the same questions.

A configured URL wins, as in botocore: ``AWS_ENDPOINT_URL_<SERVICE>``, then
``AWS_ENDPOINT_URL``, unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true. Booleans are
true only as the text ``true`` (any case), as botocore reads them.
"""

from __future__ import annotations

import re
from typing import Mapping, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit


class Partition(NamedTuple):
    name: str
    regions: "re.Pattern[str]"
    dns_suffix: str
    dual_stack_suffix: str


#: botocore/data/partitions.json, for the partitions whose every region has all three services.
PARTITIONS = (
    Partition("aws", re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$"), "amazonaws.com", "api.aws"),
    Partition("aws-cn", re.compile(r"^cn\-\w+\-\d+$"), "amazonaws.com.cn", "api.amazonwebservices.com.cn"),
    Partition("aws-us-gov", re.compile(r"^us\-gov\-\w+\-\d+$"), "amazonaws.com", "api.aws"),
)
#: The services' endpoint prefixes and the suffix of their AWS_ENDPOINT_URL_<...> variable
#: (botocore's service id, upper-cased: events is EventBridge).
SERVICES = {"sqs": "SQS", "sns": "SNS", "events": "EVENTBRIDGE"}
_GOV_FIPS_PLAIN = ("us-gov-east-1", "us-gov-west-1")  # SNS, EventBridge: FIPS is the plain host


class Endpoint(NamedTuple):
    """Where a service's requests go and the region they are signed for."""

    scheme: str
    host: str
    port: Optional[int]
    region: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port in (None, default) else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}"


def region_of(environ: Mapping[str, str]) -> Optional[str]:
    """``AWS_REGION``, then ``AWS_DEFAULT_REGION``; None when neither is set or they differ
    (botocore reads only the second: a disagreement is its to settle)."""
    region, default = environ.get("AWS_REGION") or None, environ.get("AWS_DEFAULT_REGION") or None
    if region and default and region != default:
        return None
    return region or default


def resolve(service: str, environ: Mapping[str, str]) -> Optional[Endpoint]:
    """The endpoint botocore would call for ``service`` in this environment, or None."""
    if service not in SERVICES:
        return None
    region = region_of(environ)
    if region is None or not re.fullmatch(r"[a-z0-9-]+", region):
        return None
    fips, dual = _true(environ, "AWS_USE_FIPS_ENDPOINT"), _true(environ, "AWS_USE_DUALSTACK_ENDPOINT")
    configured = _configured_url(service, environ)
    if configured is not None:
        return None if fips or dual else _parse_url(configured, region)
    partition = next((p for p in PARTITIONS if p.regions.match(region)), None)
    if partition is None:
        return None
    return Endpoint("https", _host(service, region, partition, fips, dual), None, region)


def _host(service: str, region: str, partition: Partition, fips: bool, dual: bool) -> str:
    gov = partition.name == "aws-us-gov"
    if fips and dual:
        if service == "events" and gov:
            return f"events.{region}.{partition.dual_stack_suffix}"
        return f"{service}-fips.{region}.{partition.dual_stack_suffix}"
    if fips:
        if gov and (service == "sqs" or region in _GOV_FIPS_PLAIN):
            return f"{service}.{region}.amazonaws.com"
        return f"{service}-fips.{region}.{partition.dns_suffix}"
    if dual:
        return f"{service}.{region}.{partition.dual_stack_suffix}"
    return f"{service}.{region}.{partition.dns_suffix}"


def _configured_url(service: str, environ: Mapping[str, str]) -> Optional[str]:
    if _true(environ, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
        return None
    return environ.get(f"AWS_ENDPOINT_URL_{SERVICES[service]}") or environ.get("AWS_ENDPOINT_URL") or None


def _parse_url(url: str, region: str) -> Optional[Endpoint]:
    """A configured URL as scheme, host and port; None for one with a path, query or user
    (botocore joins a path onto every request's; not worth a second rule here)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
            or parts.query or parts.fragment or parts.username or parts.password:
        return None
    return Endpoint(parts.scheme, _bracketed(parts.hostname), port, region)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _true(environ: Mapping[str, str], name: str) -> bool:
    return (environ.get(name) or "").lower() == "true"


def split_host(endpoint: Endpoint) -> Tuple[str, int]:
    """(host to connect to, port) of an endpoint."""
    host = endpoint.host[1:-1] if endpoint.host.startswith("[") else endpoint.host
    return host, endpoint.port or (443 if endpoint.scheme == "https" else 80)
