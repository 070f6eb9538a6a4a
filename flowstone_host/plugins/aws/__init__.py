"""AWS plugins: the ``s3`` IO manager, and the ``s3`` and ``dynamodb`` item readers.

They need the ``aws`` extra (``pip install 'flowstone-host[aws]'``). Importing this package
imports neither boto3 nor pyarrow: each plugin imports its client library when it is built,
and a missing extra raises a :class:`~flowstone_host.ConfigError` that names it.
"""
