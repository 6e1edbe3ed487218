"""Validate a POST /orders body and say exactly what is wrong (the 400's ``errors`` list)."""

from __future__ import annotations

import json
import re
from typing import Any, Optional

MAX_ITEMS = 50
MAX_QUANTITY = 1000
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidOrder(ValueError):
    """The request body is not a valid order; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_order(body: Optional[str]) -> tuple[str, list[dict[str, Any]]]:
    """Return (email, items) from a JSON body or raise InvalidOrder."""
    if not body:
        raise InvalidOrder(["body is empty: expected a JSON object with email and items"])
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidOrder([f"body is not valid JSON: {exc}"]) from None
    if not isinstance(data, dict):
        raise InvalidOrder([f"body must be a JSON object, not {type(data).__name__}"])
    errors: list[str] = []
    email = data.get("email")
    if not isinstance(email, str) or not _EMAIL.match(email):
        errors.append("email must be an e-mail address like name@example.com")
    items = data.get("items")
    if not isinstance(items, list) or not items:
        errors.append("items must be a non-empty list")
        items = []
    elif len(items) > MAX_ITEMS:
        errors.append(f"items has {len(items)} entries; at most {MAX_ITEMS}")
    clean = [_item(n, item, errors) for n, item in enumerate(items)]
    unknown = sorted(set(data) - {"email", "items"})
    if unknown:
        errors.append(f"unknown field(s): {', '.join(unknown)}")
    if errors:
        raise InvalidOrder(errors)
    return str(email), clean


def _item(n: int, item: Any, errors: list[str]) -> dict[str, Any]:
    where = f"items[{n}]"
    if not isinstance(item, dict):
        errors.append(f"{where} must be an object with sku, quantity and unit_price_cents")
        return {}
    sku, qty, price = item.get("sku"), item.get("quantity"), item.get("unit_price_cents")
    if not isinstance(sku, str) or not sku.strip():
        errors.append(f"{where}.sku must be a non-empty string")
    if not _whole(qty) or not 1 <= qty <= MAX_QUANTITY:
        errors.append(f"{where}.quantity must be a whole number in 1..{MAX_QUANTITY}")
    if not _whole(price) or price < 0:
        errors.append(f"{where}.unit_price_cents must be a whole number >= 0")
    return {"sku": sku, "quantity": qty, "unit_price_cents": price}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
