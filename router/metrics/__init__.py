"""Live metrics from the event stream: one set of definitions, the consumer that
counts events into time buckets, and the queries that read them back."""
