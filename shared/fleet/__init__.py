"""The fleet's Redis and dramatiq machinery: the only package of ``shared`` that imports them.

``redisconn`` connects and translates redis-py's errors once; ``leases`` (one writer per site
and job kind), ``hints`` (disposable caches), ``messages`` (actor and queue names, message
builders), ``publisher`` (publishing from any process), ``slots`` (the scheduler's once-per-slot
claims), ``queues`` (dramatiq's Redis key layout, queue depths) and ``deadletters``.  Everything
here may be lost with Redis: it delays work, never loses or duplicates data.
"""
