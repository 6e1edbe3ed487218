"""Shared test harness for lambda-defer: real parts, no mocks (see DESIGN.md).

- waiting.py      wait_until(predicate, timeout, interval=0.02, message=...), free_port(),
                  port_open(host, port), die_with_parent (Popen preexec_fn)
- moto_server.py  MotoServer, aws_env_for(url), create_resources(url) -> AwsResources,
                  client(service, endpoint_url=None), drain_queue / drain_messages
- fault_proxy.py  FaultProxy(upstream): latency, throttling, AWS errors, failed batch entries,
                  refused connections; per-action request counts
- rie.py          Rie(layer_dir, task_dir, handler, env=..., timeout_s=...): AWS's RIE outside
                  Docker (private mount + PID namespace), invoke()/logs()/stop(); write_files()
- function_package.py  task_root(src, dest, requirements=None): a function's code with its pinned
                  requirements beside it, the way the sandbox (as Lambda) lets it import them

Fixtures wrapping them live in tests/conftest.py.
"""
