"""The ``parquet`` IO manager: tables as Parquet files in Hive-style partition folders.

Needs the ``parquet`` extra (``pip install 'flowstone-host[parquet]'``); importing this
package does not import pyarrow.
"""
