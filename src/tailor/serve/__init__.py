"""`tailor serve`: an HTTP service that answers many adapters of one base model.

- ``registry``: the base model, the loaded adapters (VeRA and LoRA) and the one call that runs a
  batch of rows, each naming its adapter;
- ``batcher``: dynamic batching of concurrent requests into such batches, on one worker thread;
- ``app``: the FastAPI application (endpoints, input limits, Prometheus metrics);
- ``commands``: the command line; ``bench``: `tailor bench serve`, a loopback load test.

Import-light: nothing here imports torch until a server is built.
"""
