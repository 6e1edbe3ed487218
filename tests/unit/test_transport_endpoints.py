"""The lean transport's endpoints against botocore's own resolver, table-driven.

For each environment of the table, botocore (its endpoint rule sets, partitions and
configured-endpoint rules) is asked where it would send a request, by sending one that a
``before-send`` hook stops, and the lean resolver (``transport.endpoints.resolve``) is asked
the same. Where the lean resolver answers, it must give botocore's URL and signing region;
where the table says it does not know (ISO and other partitions, FIPS or dual-stack beside a
configured URL, a URL with a path, regions that disagree), it must answer None, so the factory
uses botocore: it never guesses.
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import pytest

from handler_lib.engine.transport import endpoints

OPERATIONS = {"sqs": ("send_message_batch", {"QueueUrl": "https://q/1/q", "Entries": [{"Id": "0", "MessageBody": "b"}]}),
              "sns": ("publish_batch", {"TopicArn": "arn:aws:sns:x:1:t",
                                        "PublishBatchRequestEntries": [{"Id": "0", "Message": "m"}]}),
              "events": ("put_events", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]})}
_CLEARED = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
            "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_EVENTBRIDGE",
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


class _Sent(Exception):
    def __init__(self, url: str, authorization: str) -> None:
        super().__init__(url)
        self.url, self.authorization = url, authorization


def botocore_endpoint(service: str) -> Optional[Tuple[str, str]]:
    """(scheme://host[:port], signing region) of botocore's request, or None if it refuses."""
    import botocore.session
    from botocore.config import Config

    session = botocore.session.get_session()
    try:
        client = session.create_client(service, config=Config(retries={"total_max_attempts": 1}))
    except Exception:  # noqa: BLE001 - EndpointVariantError...: botocore refuses
        return None

    def stop(request, **_):  # type: ignore[no-untyped-def]
        raise _Sent(request.url, request.headers.get("Authorization", b"").decode()
                    if isinstance(request.headers.get("Authorization"), bytes) else request.headers["Authorization"])

    client.meta.events.register("before-send", stop)
    method, params = OPERATIONS[service]
    try:
        getattr(client, method)(**params)
    except _Sent as sent:
        base = re.match(r"^(https?://[^/]+)", sent.url)
        region = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", sent.authorization)
        assert base and region
        url = re.sub(r"^https://([^/]+):443$", r"https://\1", base.group(1))  # the same host: 443 is https's
        return re.sub(r"^http://([^/]+):80$", r"http://\1", url), region.group(1)
    except Exception:  # noqa: BLE001 - EndpointResolutionError, NoRegionError...: botocore refuses
        return None
    raise AssertionError("the request was not stopped")


REGIONS = [("us-east-1", True), ("eu-west-1", True), ("ap-southeast-5", True), ("mx-central-1", True),
           ("cn-north-1", True), ("cn-northwest-1", True), ("us-gov-west-1", True), ("us-gov-east-1", True),
           ("us-iso-east-1", False), ("us-isob-east-1", False), ("eu-isoe-west-1", False),
           ("us-isof-south-1", False), ("eusc-de-east-1", False), ("aws-global", False)]
FLAGS: List[Dict[str, str]] = [{}, {"AWS_USE_FIPS_ENDPOINT": "true"}, {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
                               {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "TRUE"},
                               {"AWS_USE_FIPS_ENDPOINT": "1"}]  # botocore: only "true" is true
LOCAL = "http://127.0.0.1:4566"
TABLE: List[Tuple[str, Dict[str, str], bool]] = [
    (f"{region} {flags}", {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, **flags}, known)
    for region, known in REGIONS for flags in FLAGS
] + [
    ("endpoint url", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL}, True),
    ("https endpoint, default port", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "https://local.test:443/"}, True),
    ("endpoint url, other region", {"AWS_DEFAULT_REGION": "cn-north-1", "AWS_ENDPOINT_URL": "http://localhost:9324"}, True),
    ("endpoint url, ISO region", {"AWS_DEFAULT_REGION": "us-iso-east-1", "AWS_ENDPOINT_URL": LOCAL}, True),
    ("sqs's own", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1001"}, True),
    ("sns's own", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:1002"}, True),
    ("eventbridge's own", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL_EVENTBRIDGE": "http://127.0.0.1:1003"}, True),
    ("own beats global", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL,
                          "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:1001", "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:1002",
                          "AWS_ENDPOINT_URL_EVENTBRIDGE": "http://127.0.0.1:1003"}, True),
    ("ignored", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL, "AWS_ENDPOINT_URL_SQS": LOCAL,
                 "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, True),
    ("ignored, not 'true'", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL,
                             "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "yes"}, True),
    ("empty endpoint url", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": ""}, True),
    ("endpoint url and fips", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL,
                               "AWS_USE_FIPS_ENDPOINT": "true"}, False),
    ("endpoint url and dualstack", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL,
                                    "AWS_USE_DUALSTACK_ENDPOINT": "true"}, False),
    ("endpoint url with a path", {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": LOCAL + "/aws"}, False),
    ("no region", {}, False),
    ("regions disagree", {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}, False),
]


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch):
    def apply(env: Dict[str, str]) -> Dict[str, str]:
        for name in _CLEARED:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return dict(env)

    return apply


@pytest.mark.parametrize("service", sorted(endpoints.SERVICES))
@pytest.mark.parametrize("case,env,known", TABLE, ids=[row[0] for row in TABLE])
def test_the_lean_endpoint_is_botocores_or_none(environ, service: str, case: str, env: Dict[str, str],
                                                known: bool) -> None:
    environ(env)
    theirs = botocore_endpoint(service)
    ours = endpoints.resolve(service, env)
    if not known:
        assert ours is None, f"{case}: the lean resolver guessed {ours}; botocore says {theirs}"
        return
    assert ours is not None, f"{case}: the lean resolver does not know; botocore says {theirs}"
    assert theirs == (ours.url, ours.region), case


def test_only_aws_region_set_is_a_region_for_the_lean_transport_and_none_for_botocore(environ) -> None:
    """Lambda sets both AWS_REGION and AWS_DEFAULT_REGION; botocore reads only the second. With
    only the first, botocore has no region at all (NoRegionError): the lean transport takes it."""
    env = environ({"AWS_REGION": "eu-west-1"})
    assert botocore_endpoint("sqs") is None
    ours = endpoints.resolve("sqs", env)
    assert ours is not None and ours.url == "https://sqs.eu-west-1.amazonaws.com"


@pytest.mark.parametrize("service", sorted(endpoints.SERVICES))
def test_the_service_specific_variable_is_the_one_botocore_reads(service: str) -> None:
    from botocore.configprovider import ConfiguredEndpointProvider

    provider = ConfiguredEndpointProvider(full_config={}, scoped_config={}, client_name=service, environ={})
    assert provider._get_service_env_var_name() == f"AWS_ENDPOINT_URL_{endpoints.SERVICES[service]}"
