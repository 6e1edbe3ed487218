"""Calls the type checker must refuse: the public API is typed, not Any."""

from __future__ import annotations

from handler_lib import defer


@defer.task
def send_receipt(order_id: str, email: str) -> None:
    pass


send_receipt.defer("o-1")  # missing email
send_receipt.defer("o-1", 2)  # email is a str
defer.sqs(42, "message")  # queue_url is a str
defer.task(pass_item_id=True)(42)  # not a function
