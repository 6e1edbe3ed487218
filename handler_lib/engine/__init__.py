"""The delivery engine: pending items, batching, the sinks, retries and backoff, outcomes,
dead letters, the task runner and the AWS clients.

One engine, three drivers over it: inline delivery in the function (``handler_lib._inline``),
the per-invoke runner of the extension on on-demand Lambda (``extension.runner``) and its
continuous delivery on Managed Instances (``extension.continuous``). It lives inside
``handler_lib`` so that both reach it by an ordinary import under a name no user package
can shadow; it imports nothing of the library but ``wire`` and ``config``, and nothing is
loaded here, so ``handler_lib.engine.task_marker`` costs a cold start nothing more.
"""
