"""PostgreSQL plugins: the ``postgres`` resource, IO manager, item reader and coordinators.

They need the ``postgres`` extra (``pip install 'flowstone-host[postgres]'``). Importing this
package imports neither psycopg nor psycopg_pool: each plugin imports them when it is built,
and a missing extra raises a :class:`~flowstone_host.ConfigError` that names it.

Every plugin but the resource takes ``resource: <name>`` (the connection pool of a
``postgres`` Resource the declaration lists in ``depends_on``) or ``dsn:`` (a small pool of
its own, for standalone use and tests). Tables live in the configured ``schema``
(``flowstone`` by default), created and migrated at setup.
"""
