"""A lean AWS transport for the hot sinks: SQS, SNS and EventBridge over the standard library.

Why: botocore costs 0.68 ms of CPU per SendMessageBatch against 0.12 ms for SigV4 written
out with ``hmac``/``hashlib`` and sent with ``http.client``, and loading it (session and three
clients) costs ~150 ms of CPU, ~430 ms of a 512 MB function's first drain (docs/performance.md).
botocore stays the reference and the fallback: wherever this package is not sure to give the
same answer (a profile, a config file, a proxy, a partition or option it does not know) the
engine's ``ClientFactory`` uses botocore for that service instead (``lean_client``).

Modules, one concern each:

- ``errors``: the exceptions, in botocore's shape (``.response``) so outcomes map the same;
- ``signing``: SigV4 with ``hmac``/``hashlib``;
- ``credentials``: the environment's keys, or the container credentials endpoint;
- ``endpoints``: the endpoint rules of the three services, as botocore resolves them;
- ``http``: a keep-alive connection pool over ``http.client``;
- ``protocols``: AWS JSON 1.0/1.1 and the query protocol (request bodies, replies, errors);
- ``clients``: one call path and the three thin clients the sinks call.

Nothing here imports botocore.
"""

from .clients import LEAN_SERVICES, LeanClient, lean_client
from .credentials import CredentialSource, credential_source

__all__ = ["LEAN_SERVICES", "CredentialSource", "LeanClient", "credential_source", "lean_client"]
