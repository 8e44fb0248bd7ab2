"""The command gate's server side (issue 12): a staged command line read by bash's grammar
(reading.py) and judged by the tenant's policy (policy.py) before anyone may approve it."""
