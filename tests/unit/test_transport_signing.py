"""SigV4 of the lean transport (handler_lib.engine.transport.signing): AWS's published test
vectors, the signing-key example of AWS's documentation, and the same Authorization header as
botocore's own SigV4Auth for the requests the lean clients send, at the same time.

moto does not check signatures: these are what stands between a wrong signature and a
function whose every delivery AWS refuses.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Dict

import pytest

from handler_lib.engine.transport import shapes
from handler_lib.engine.transport.credentials import Credentials
from handler_lib.engine.transport.protocols import JsonProtocol, QueryProtocol
from handler_lib.engine.transport.signing import Scope, sign, signing_key

SUITE_CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = calendar.timegm((2015, 8, 30, 12, 36, 0))  # 20150830T123600Z
SUITE_SCOPE = Scope("us-east-1", "service")
SUITE_PREFIX = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "


def test_the_signing_key_of_awss_documentation() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/signing-elements.html (derivation example)
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
    assert key.hex() == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"


# aws-sig-v4-test-suite (2015-08-30): name, method, query, extra headers, body, SignedHeaders, Signature
SUITE = [
    ("get-vanilla", "GET", "", {}, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-vanilla", "POST", "", {}, b"", "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("post-x-www-form-urlencoded", "POST", "", {"Content-Type": "application/x-www-form-urlencoded"},
     b"Param1=value1", "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
    ("get-vanilla-query-order-key-case", "GET", "Param2=value2&Param1=value1", {}, b"", "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("post-vanilla-query", "POST", "Param1=value1", {}, b"", "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
]


@pytest.mark.parametrize("name,method,query,headers,body,signed,signature", SUITE, ids=[c[0] for c in SUITE])
def test_the_aws_sigv4_test_suite(name: str, method: str, query: str, headers: Dict[str, str], body: bytes,
                                  signed: str, signature: str) -> None:
    added = sign(method, "/", query, {"Host": "example.amazonaws.com", **headers}, body,
                 SUITE_CREDENTIALS, SUITE_SCOPE, now=SUITE_TIME)
    assert added["X-Amz-Date"] == "20150830T123600Z"
    assert added["Authorization"] == f"{SUITE_PREFIX}SignedHeaders={signed}, Signature={signature}"


def _botocore_authorization(monkeypatch: pytest.MonkeyPatch, url: str, headers: Dict[str, str], body: bytes,
                            credentials: Credentials, scope: Scope, when: dt.datetime) -> Dict[str, str]:
    """botocore's SigV4Auth on the same request, its clock set to ``when``."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    request = AWSRequest("POST", url, data=body, headers={k: v for k, v in headers.items() if k != "Host"})
    botocore.auth.SigV4Auth(BotoCredentials(credentials.access_key, credentials.secret_key, credentials.token),
                            scope.service, scope.region).add_auth(request)
    return dict(request.headers.items())


SQS_ENTRY = {"Id": "0", "MessageBody": "héllo ✓ \U0001f600",
             "MessageAttributes": {"defer_id": {"DataType": "String", "StringValue": "abc"},
                                   "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
                                   "n": {"DataType": "Number", "StringValue": "1.5"}},
             "MessageGroupId": "g", "MessageDeduplicationId": "d",
             "MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-2-3"}}}
CASES = [
    ("sqs", "https://sqs.eu-west-1.amazonaws.com", JsonProtocol("1.0", "AmazonSQS", query_compatible=True),
     "SendMessageBatch", shapes.SEND_MESSAGE_BATCH, {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "Entries": [SQS_ENTRY]}),
    ("sns", "http://127.0.0.1:4566", QueryProtocol("2010-03-31"), "PublishBatch", shapes.PUBLISH_BATCH,
     {"TopicArn": "arn:aws:sns:eu-west-1:1:t",
      "PublishBatchRequestEntries": [{"Id": "0", "Message": "a b&c=d é", "Subject": "s",
                                      "MessageAttributes": SQS_ENTRY["MessageAttributes"]}]}),
    ("events", "https://events.cn-north-1.amazonaws.com.cn", JsonProtocol("1.1", "AWSEvents"), "PutEvents",
     shapes.PUT_EVENTS, {"Entries": [{"Source": "s", "DetailType": "t", "Detail": "{\"a\": \"é\"}",
                                      "EventBusName": "default", "TraceHeader": "Root=1-2-3"}]}),
]


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaDH//session+token=="])
@pytest.mark.parametrize("service,url,protocol,operation,shape,params", CASES, ids=[c[0] for c in CASES])
def test_the_authorization_header_is_botocores(monkeypatch: pytest.MonkeyPatch, token, service, url, protocol,
                                               operation, shape, params) -> None:
    # GIVEN the request a lean client sends (its protocol's headers and body, its Host)
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    region = url.split(".")[1] if "amazonaws" in url else "eu-west-1"
    scope = Scope(region, service)
    headers, body = protocol.request(operation, shape, params)
    headers["Host"] = url.split("://", 1)[1]
    headers["X-Amzn-Trace-Id"] = "Root=1-5759e988-bd862e3fe1be46a994272793"  # never signed
    when = dt.datetime(2026, 12, 5, 11, 59, 7, tzinfo=dt.timezone.utc)
    # WHEN both sign it at the same time
    ours = sign("POST", "/", "", headers, body, credentials, scope, now=when.timestamp())
    theirs = _botocore_authorization(monkeypatch, url + "/", headers, body, credentials, scope, when)
    # THEN the signature, the date and the token are the same
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")
    assert "x-amzn-trace-id" not in ours["Authorization"]
