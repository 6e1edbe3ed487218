"""When the lean transport may serve an environment, and when botocore must (no sockets here):
``credential_source`` and ``LeanTransport.from_environ`` decide from the environment alone."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import pytest

from handler_lib.config import Config
from handler_lib.engine.clients import ClientFactory
from handler_lib.engine.transport.clients import LeanTransport
from handler_lib.engine.transport.credentials import ContainerCredentials, Credentials, StaticCredentials, credential_source

KEYS = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "HOME": "/nonexistent"}
BASE = {**KEYS, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}


def test_the_environments_keys_are_used_as_they_are() -> None:
    source = credential_source({**KEYS, "AWS_SESSION_TOKEN": "tok"})
    assert isinstance(source, StaticCredentials) and source.get() == Credentials("AKID", "secret", "tok")


@pytest.mark.parametrize("extra", [
    {"AWS_PROFILE": "dev"}, {"AWS_DEFAULT_PROFILE": "dev"}, {"AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "a"},
    {"AWS_CREDENTIAL_EXPIRATION": "2030-01-01T00:00:00Z"}, {"AWS_SECURITY_TOKEN": "legacy"},
])
def test_what_botocore_reads_differently_is_botocores(extra: Dict[str, str]) -> None:
    assert credential_source({**KEYS, **extra}) is None


def test_half_a_key_pair_or_none_at_all_is_botocores() -> None:
    assert credential_source({"AWS_ACCESS_KEY_ID": "AKID", "HOME": "/nonexistent"}) is None
    assert credential_source({"HOME": "/nonexistent"}) is None


def test_a_shared_file_with_anything_in_it_is_botocores(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("[default]\nregion = eu-west-1\n")
    container = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/creds", "HOME": "/nonexistent"}
    assert credential_source({**container, "AWS_CONFIG_FILE": str(config)}) is None
    assert credential_source({**container, "AWS_CONFIG_FILE": "/dev/null"}) is not None  # empty: nothing to read
    # keys in the environment too: botocore would take them first, but the file may hold a
    # region, an endpoint or FIPS: the whole environment is botocore's
    assert LeanTransport.from_environ({**BASE, "AWS_CONFIG_FILE": str(config)}, 10) is None


@pytest.mark.parametrize("env,url", [
    ({"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/creds"}, "http://169.254.170.2/v2/creds"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9001/creds"}, "http://127.0.0.1:9001/creds"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://localhost/c"}, "http://localhost/c"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "https://creds.example/c"}, "https://creds.example/c"),
    ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://creds.example/c"}, None),  # botocore refuses such a host
])
def test_the_container_endpoint(env: Dict[str, str], url: str) -> None:
    source = credential_source({**env, "HOME": "/nonexistent"})
    if url is None:
        assert source is None
    else:
        assert isinstance(source, ContainerCredentials) and source.url == url


@pytest.mark.parametrize("proxy", ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"])
def test_a_proxy_is_botocores(proxy: str) -> None:
    assert LeanTransport.from_environ({**BASE, proxy: "http://proxy:3128"}, 10) is None


def test_the_factory_picks_per_service() -> None:
    # GIVEN an environment the lean transport serves, but an SNS endpoint with a path
    env = {**BASE, "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:9/sns-path"}
    factory = ClientFactory(Config(), environ=env)
    # THEN SQS and EventBridge are lean, SNS is botocore's, as are Lambda, Step Functions and S3
    assert [factory.uses_botocore(s) for s in ("sqs", "events", "sns", "lambda", "stepfunctions", "s3")] == \
        [False, False, True, True, True, True]
    assert getattr(factory("sqs"), "lean", False) and not factory.botocore_loaded()
    # AND DEFER_TRANSPORT=botocore is botocore for every service
    assert ClientFactory(Config(transport="botocore"), environ=env).uses_botocore("sqs")


@pytest.mark.parametrize("headers", [{"Host": "elsewhere"}, {"x-amz-date": "x"}, {"X-Amzn-Trace-Id": "a\r\nb: c"},
                                     {"Bad Header": "x"}])
def test_extra_headers_that_would_change_the_request_are_refused_before_sending(headers: Dict[str, str]) -> None:
    from handler_lib.engine.transport.errors import ParamValidationError

    client = ClientFactory(Config(), environ={**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})("sns")
    with pytest.raises(ParamValidationError):
        client.publish_batch(TopicArn="arn:aws:sns:eu-west-1:1:t", PublishBatchRequestEntries=[{"Id": "0", "Message": "m"}],
                             extra_headers=headers)


@pytest.mark.parametrize("entries,problem", [
    ([], "Invalid length"), ([{"Id": "0"}], "Missing required parameter"),
    ([{"Id": "0", "MessageBody": "b", "Delay": 1}], "Unknown parameter"),
    ([{"Id": "0", "MessageBody": b"bytes"}], "Invalid type"),
    ([{"Id": "0", "MessageBody": "b", "MessageAttributes": {"a": {"DataType": "Binary", "BinaryValue": "text"}}}],
     "Invalid type"),
])
def test_bad_arguments_are_a_param_validation_error_before_sending(entries, problem: str) -> None:
    from handler_lib.engine.outcome import INVALID_REQUEST
    from handler_lib.engine.sinks.base import describe_exception
    from handler_lib.engine.transport.errors import ParamValidationError

    client = ClientFactory(Config(), environ={**BASE, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})("sqs")
    with pytest.raises(ParamValidationError, match=problem) as raised:
        client.send_message_batch(QueueUrl="https://q", Entries=entries)
    assert describe_exception(raised.value)[0] == INVALID_REQUEST  # as botocore's own validation
