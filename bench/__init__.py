"""`make bench`: throughput and latency of the NGSI-LD API next to ceilings measured in the same
run.

Not part of `make test`. ``python -m bench --help`` lists the options; docs/bench.md explains the
scenarios, the ceilings and how to read the table.
"""
