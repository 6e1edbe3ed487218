#!/usr/bin/env python3
"""A do-nothing external extension: register, then call next until SHUTDOWN (the sandbox floor)."""
import http.client
import json
import os
import sys

host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
conn.request("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}),
             {"Lambda-Extension-Name": os.path.basename(sys.argv[0])})
resp = conn.getresponse()
ext_id = resp.getheader("Lambda-Extension-Identifier")
resp.read()
while True:
    conn.request("GET", "/2020-01-01/extension/event/next", headers={"Lambda-Extension-Identifier": ext_id})
    resp = conn.getresponse()
    event = json.loads(resp.read())
    if event.get("eventType") == "SHUTDOWN":
        sys.exit(0)
