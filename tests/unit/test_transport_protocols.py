"""The lean transport's reply parsing against botocore's own parsers, for the same bytes.

Each reply (successes, per-entry failures, and errors as AWS, SQS's query-compatible mode and
a proxy's bare 5xx page write them) is parsed by botocore's parser for the service's protocol
and operation (botocore/parsers.py with the service's model) and by the lean protocol: the
reply dicts must match, and an error's ``Error`` (Code, Message, Type, QueryErrorCode) must be
what botocore's ClientError.response would hold, so that describe_exception reads both alike.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

import pytest

from handler_lib.engine.sinks.base import describe_exception
from handler_lib.engine.transport import shapes
from handler_lib.engine.transport.errors import ServiceError
from handler_lib.engine.transport.http import Reply
from handler_lib.engine.transport.protocols import JsonProtocol, Protocol, QueryProtocol

NS = 'xmlns="http://sns.amazonaws.com/doc/2010-03-31/"'
PROTOCOLS: Dict[str, Protocol] = {"sqs": JsonProtocol("1.0", "AmazonSQS", query_compatible=True),
                                  "events": JsonProtocol("1.1", "AWSEvents"), "sns": QueryProtocol("2010-03-31")}
RESULTS: Dict[str, Optional[shapes.Shape]] = {"PublishBatch": shapes.PUBLISH_BATCH_RESULT}


def botocore_parse(service: str, operation: str, status: int, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
    import botocore.session
    from botocore import parsers

    model = botocore.session.get_session().get_service_model(service)
    op = model.operation_model(operation)
    parser = parsers.create_parser(model.metadata["protocol"])
    return parser.parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)


def lean_parse(service: str, operation: str, status: int, headers: Dict[str, str], body: bytes) -> Dict[str, Any]:
    try:
        return PROTOCOLS[service].reply(operation, Reply(status, headers, body), RESULTS.get(operation))
    except ServiceError as exc:
        return exc.response


JSON1 = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "rid-1"}
CASES = [
    ("sqs ok, one failed", "sqs", "SendMessageBatch", 200, JSON1, json.dumps(
        {"Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}],
         "Failed": [{"Id": "1", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "bad"}]}).encode()),
    ("sqs send_message", "sqs", "SendMessage", 200, JSON1, b'{"MessageId": "m", "MD5OfMessageBody": "x"}'),
    ("sqs query-compatible error", "sqs", "SendMessageBatch", 400,
     {**JSON1, "x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
     b'{"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "The specified queue does not exist."}'),
    ("sqs throttled, Message", "sqs", "SendMessageBatch", 400, {**JSON1, "x-amzn-query-error": "RequestThrottled;Sender"},
     b'{"__type": "com.amazonaws.sqs#RequestThrottled", "Message": "Rate exceeded"}'),
    ("sqs 500 json", "sqs", "SendMessageBatch", 500, JSON1, b'{"__type": "InternalError:http://x", "message": "boom"}'),
    ("sqs 500 no type", "sqs", "SendMessageBatch", 500, JSON1, b'{"message": "boom"}'),
    ("sqs 400 not json", "sqs", "SendMessageBatch", 400, JSON1, b"oops, not json"),
    ("sqs 502 empty", "sqs", "SendMessageBatch", 502, {}, b""),
    ("sqs 503 html", "sqs", "SendMessageBatch", 503, {}, b"<html><body>Service Unavailable</body></html>"),
    ("events ok, one failed", "events", "PutEvents", 200, {}, json.dumps(
        {"FailedEntryCount": 1, "Entries": [{"EventId": "e"}, {"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}).encode()),
    ("events throttled", "events", "PutEvents", 400, {"x-amzn-requestid": "r"},
     b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'),
    ("events 504 empty", "events", "PutEvents", 504, {}, b""),
    ("sns ok, failed", "sns", "PublishBatch", 200, {"content-type": "text/xml"},
     f'<PublishBatchResponse {NS}><PublishBatchResult><Successful><member><Id>0</Id><MessageId>m</MessageId>'
     f'<SequenceNumber>1</SequenceNumber></member></Successful><Failed><member><Id>1</Id><Code>InternalError</Code>'
     f'<Message>x &amp; y</Message><SenderFault>false</SenderFault></member><member><Id>2</Id><Code>Bad</Code>'
     f'<Message>m</Message><SenderFault>true</SenderFault></member></Failed></PublishBatchResult><ResponseMetadata>'
     f'<RequestId>rid</RequestId></ResponseMetadata></PublishBatchResponse>'.encode()),
    ("sns ok, none failed", "sns", "PublishBatch", 200, {},
     f'<PublishBatchResponse {NS}><PublishBatchResult><Successful><member><Id>0</Id><MessageId>m</MessageId>'
     f'</member></Successful><Failed/></PublishBatchResult><ResponseMetadata><RequestId>rid</RequestId>'
     f'</ResponseMetadata></PublishBatchResponse>'.encode()),
    ("sns error", "sns", "PublishBatch", 400, {},
     f'<ErrorResponse {NS}><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>'
     f'</Error><RequestId>rid</RequestId></ErrorResponse>'.encode()),
    ("sns error, empty message", "sns", "PublishBatch", 404, {},
     f'<ErrorResponse {NS}><Error><Type>Sender</Type><Code>NotFound</Code><Message></Message>'
     f'</Error><RequestId>rid</RequestId></ErrorResponse>'.encode()),
    ("sns receiver error", "sns", "PublishBatch", 500, {},
     f'<ErrorResponse {NS}><Error><Type>Receiver</Type><Code>InternalError</Code><Message>x</Message>'
     f'</Error><RequestId>rid</RequestId></ErrorResponse>'.encode()),
    ("sns 500 empty", "sns", "PublishBatch", 500, {}, b""),
]


@pytest.mark.parametrize("case,service,operation,status,headers,body", CASES, ids=[c[0] for c in CASES])
def test_replies_parse_as_botocore_parses_them(case: str, service: str, operation: str, status: int,
                                               headers: Dict[str, str], body: bytes) -> None:
    theirs = botocore_parse(service, operation, status, headers, body)
    ours = lean_parse(service, operation, status, headers, body)
    their_metadata, our_metadata = theirs.pop("ResponseMetadata", {}), ours.pop("ResponseMetadata")
    assert ours == theirs
    assert our_metadata["HTTPStatusCode"] == status
    if "RequestId" in their_metadata:
        assert our_metadata["RequestId"] == their_metadata["RequestId"]


@pytest.mark.parametrize("case,service,operation,status,headers,body",
                         [c for c in CASES if c[3] >= 300], ids=[c[0] for c in CASES if c[3] >= 300])
def test_an_error_is_described_as_botocores_client_error_is(case: str, service: str, operation: str, status: int,
                                                            headers: Dict[str, str], body: bytes) -> None:
    from botocore.exceptions import ClientError

    theirs = botocore_parse(service, operation, status, headers, body)
    theirs.setdefault("ResponseMetadata", {})["HTTPStatusCode"] = status
    with pytest.raises(ServiceError) as ours:
        PROTOCOLS[service].reply(operation, Reply(status, headers, body), RESULTS.get(operation))
    assert describe_exception(ours.value) == describe_exception(ClientError(theirs, operation))
