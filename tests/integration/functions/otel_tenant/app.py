"""A function traced with OpenTelemetry (the SDK, configured here as a user would) that may run
under tenant isolation: what it defers should carry its handler span's trace context and the
invoke's tenant."""

import os

from opentelemetry.sdk.trace import TracerProvider

from handler_lib import defer

TRACER = TracerProvider().get_tracer("otel_tenant")
QUEUE_URL = os.environ["TEST_QUEUE_URL"]
NINE = {f"a{n}": str(n) for n in range(9)}  # with defer_id: the 10 attributes a message may have


@defer.task(queue=QUEUE_URL)
def queued(tag):
    return tag


@defer
def handler(event, context):
    tag = event["tag"]
    with TRACER.start_as_current_span("handler") as span:
        defer.sqs(QUEUE_URL, {"tag": tag, "kind": "sqs"})
        defer.sns(os.environ["TEST_TOPIC_ARN"], {"tag": tag, "kind": "sns"})
        if event.get("full"):
            defer.sqs(QUEUE_URL, {"tag": tag, "kind": "full"}, attributes=NINE)
        if event.get("every_kind"):
            defer.event("TenantTest", {"tag": tag, "kind": "event"}, source=os.environ["TEST_EVENT_SOURCE"],
                        bus=os.environ["TEST_BUS_NAME"])
            defer.invoke("billing", {"tag": tag, "kind": "invoke"})
            queued.defer(tag)
    context_ = span.get_span_context()
    return {"trace_id": f"{context_.trace_id:032x}", "tenant": getattr(context, "tenant_id", None),
            "upstream_runtime_api": os.environ.get("DEFER_UPSTREAM_RUNTIME_API"),
            "next_wrapper": os.environ.get("OTEL_TEST_WRAPPER")}
