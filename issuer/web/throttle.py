"""Per-client throttling of the unauthenticated OpenID4VCI endpoints (token, nonce).

A token bucket per client address, in this process's memory: ``burst`` requests at
once, then ``rate`` per second.  It stops one address from grinding the token
endpoint or filling the nonce table; it is not the brute-force defence itself
(that is the tx_code's five tries, counted in the database across every worker,
address and DPoP key: issuer/domain/offers.py).  With N workers an address gets N
buckets, so the numbers are per worker; a reverse proxy in front is the place for
a deployment-wide limit.  Behind a proxy the address is the client's only when
``DUALRES_TRUSTED_PROXIES`` is set (issuer/config.py); otherwise every client
shares the proxy's address, which is why the burst is generous.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from flask import current_app

BURST: Final = 120
RATE: Final = 2.0  # per second: 120 a minute, sustained
MAX_CLIENTS: Final = 50_000  # bounded memory: the least recently seen address goes first


class Throttle:
    def __init__(self, burst: int = BURST, rate: float = RATE, max_clients: int = MAX_CLIENTS):
        self.burst, self.rate, self.max_clients = burst, rate, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, client: str, now: float) -> float | None:
        """Count a request; None if allowed, else the seconds until the next one is."""
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[client] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[client] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return None


def app_throttle(name: str, **kwargs: float) -> Throttle:
    """The current app's bucket set called ``name``, made on first use only."""
    found: Throttle | None = current_app.extensions.get(name)
    if found is None:
        # Two first requests at once may each make one; setdefault keeps one.
        found = current_app.extensions.setdefault(name, Throttle(**kwargs))  # type: ignore[arg-type]
    return found
