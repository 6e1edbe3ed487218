"""What SQS and SNS would refuse is refused at the call (review finding 18).

Before, these were accepted by ``defer.sqs`` / ``defer.sns`` and refused by the service only
when the extension sent them, after the response: the item was dead-lettered late instead of
raising where it was made. The rules, from the SQS and SNS API references:

- message attribute names: A-Z a-z 0-9 ``_`` ``-`` ``.``, at most 256 characters, not starting
  or ending with a period, no two periods in a row, not starting with ``AWS.`` or ``Amazon.``
  in any casing;
- message attribute values: not empty; a Number is a finite number (SQS: at most 38
  significant digits, 10^-128 to 10^126 in magnitude); a String has the body's characters;
- bodies (and String attribute values): at least one character, only
  #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF (inside JSON too: the
  encoder writes non-ASCII characters as they are);
- FIFO ``MessageGroupId`` / ``MessageDeduplicationId``: 1 to 128 characters, each a letter,
  a digit or ASCII punctuation;
- SNS ``Subject``: no line breaks or control characters.
"""

from __future__ import annotations

import pytest

from handler_lib import defer
from handler_lib.testing import capture

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/orders"
FIFO = QUEUE + ".fifo"
TOPIC = "arn:aws:sns:us-east-1:123456789012:orders"
FIFO_TOPIC = TOPIC + ".fifo"
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def sqs(message="m", **kw):
    return defer.sqs(QUEUE, message, **kw)


def sns(message="m", **kw):
    return defer.sns(TOPIC, message, **kw)


BOTH = [pytest.param(sqs, id="sqs"), pytest.param(sns, id="sns")]


def refused(call, match, error=ValueError):
    with capture() as deferred:
        with pytest.raises(error, match=match):
            call()
    assert list(deferred) == [], "something was queued"


@pytest.mark.parametrize("send", BOTH)
@pytest.mark.parametrize("name", [
    "has space", "AWS.trace", "aws.x", "Amazon.x", "AMAZON.x", "aMaZoN.x", "x" * 257, ".lead", "trail.",
    "a..b", "naïve", "a/b", "a:b", "a\x00b", "tab\t",
])
def test_attribute_names_the_services_refuse_are_refused_at_the_call(send, name):
    refused(lambda: send(attributes={name: "v"}), r"attribute name .* ")


@pytest.mark.parametrize("send", BOTH)
@pytest.mark.parametrize("value, match", [
    (float("nan"), "finite number"),
    (float("inf"), "finite number"),
    (float("-inf"), "finite number"),
    ("", "empty"),
    (b"", "empty"),
    ("a\x00b", "U\\+0000"),
    ("\uffff", "U\\+FFFF"),
    ("x\x1b[0m", "U\\+001B"),
])
def test_attribute_values_the_services_refuse_are_refused_at_the_call(send, value, match):
    refused(lambda: send(attributes={"a": value}), f"attribute 'a' .*{match}")


@pytest.mark.parametrize("value", [1e127, -1e127, 1e-129, -1e-129, 5e-324])
def test_sqs_numbers_outside_its_range_are_refused_at_the_call(value):
    """SQS: 10^-128 to 10^126 in magnitude (an int the wire carries, 64 bits, is always inside)."""
    refused(lambda: sqs(attributes={"n": value}), "attribute 'n' .*SQS")


@pytest.mark.parametrize("send", BOTH)
@pytest.mark.parametrize("message, match", [
    ("", "empty"),
    ("nul \x00 inside", "U\\+0000 at position 4"),
    ("\uffff", "U\\+FFFF at position 0"),
    ("ab\ufffe", "U\\+FFFE at position 2"),
    ("bell \x07", "U\\+0007"),
    ("vt \x0b ff \x0c", "U\\+000B"),
    ("\x1f", "U\\+001F"),
    ({"text": "\uffff"}, "U\\+FFFF"),  # written as is inside JSON (ensure_ascii=False)
    ({"\ufffe": 1}, "U\\+FFFE"),
    (["ok", "é\uffffé"], "U\\+FFFF"),
])
def test_bodies_with_characters_the_services_refuse_are_refused_at_the_call(send, message, match):
    service = "SQS" if send is sqs else "SNS"
    refused(lambda: send(message), f"{service} message .*{match}")


@pytest.mark.parametrize("fifo_call", [
    pytest.param(lambda **kw: defer.sqs(FIFO, "m", **kw), id="sqs"),
    pytest.param(lambda **kw: defer.sns(FIFO_TOPIC, "m", **kw), id="sns"),
])
@pytest.mark.parametrize("kw, match", [
    ({"group_id": "has space"}, "group_id .*position 3"),
    ({"group_id": "é"}, "group_id .*position 0"),
    ({"group_id": "tab\t"}, "group_id"),
    ({"group_id": "x" * 129}, "group_id .*128"),
    ({"group_id": "g", "dedup_id": "has space"}, "dedup_id .*position 3"),
    ({"group_id": "g", "dedup_id": "日本"}, "dedup_id"),
    ({"group_id": "g", "dedup_id": ""}, "dedup_id"),
    ({"group_id": "g", "dedup_id": "x" * 129}, "dedup_id .*128"),
])
def test_fifo_ids_with_characters_the_services_refuse_are_refused_at_the_call(fifo_call, kw, match):
    refused(lambda: fifo_call(**kw), match)


@pytest.mark.parametrize("subject", ["bell\x07", "nul\x00", "cr\rlf", "del\x7f"])
def test_sns_subjects_with_control_characters_are_refused_at_the_call(subject):
    refused(lambda: sns(subject=subject), "subject")


def test_the_edges_of_what_the_services_accept_are_accepted():
    names = {"a": "v", "A-b_c.d": "v", "x" * 256: "v", "AWSx": "v", "aws_x": "v", "Amazonia": "v",
             "a.b.c": "v"}
    bodies = ["\t\n\r", "\ud7ff\ue000\ufffd", "\U00010000\U0010ffff", "😀", "\x7f\x80\x9f", " ",
              {"nul": "\x00", "esc": "\x1b", "max": "\U0010ffff"}]  # JSON escapes control characters
    with capture() as deferred:
        for send in (sqs, sns):
            send(attributes=names)
            for body in bodies:
                send(body)
            send(attributes={"s": "\t\ufffd\U0010ffff", "b": b"\x00", "z": 0, "f": -0.0, "i": -(2 ** 63),
                             "u": 2 ** 64 - 1, "big": 1e126, "small": 1e-128, "neg": -1.5e100})
        for send_fifo in (lambda **kw: defer.sqs(FIFO, "m", **kw), lambda **kw: defer.sns(FIFO_TOPIC, "m", **kw)):
            send_fifo(group_id=PUNCTUATION, dedup_id=PUNCTUATION)
            send_fifo(group_id="g" * 128, dedup_id="0aZ" + "d" * 125)
        sns(subject="Ünïcödé subject, punctuation!?")
    assert len(deferred) == 2 * (2 + len(bodies)) + 4 + 1
