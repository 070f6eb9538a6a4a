"""The queue executor: scatter chunks and parallel branches as jobs on a PostgreSQL queue
(procrastinate), run by ``flowstone-host worker`` processes anywhere (extra
``distributed``)."""
