"""OIDC verification latency while Google's certificate endpoint hangs (issue 18, item 3).

Signs tokens with a throwaway key, lets the cached certificates expire, makes the
certificate endpoint hang, then measures how long tokens whose key is cached take to
verify while junk tokens with unknown key ids keep arriving. Baseline: the same check
with a healthy endpoint, in the same run. Prints p50/p99/max in ms and the fetch count.

    python bench/oidc.py [--tokens 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

from scoperouter.runtime.oidc import CertCache, oidc_verifier

AUD, SA = "https://router.example/events", "push@p.iam.gserviceaccount.com"


def keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def token(private: str, kid: str) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": AUD,
        "iat": now,
        "exp": now + 600,
        "email": SA,
        "email_verified": True,
    }
    out: bytes = jwt.encode(crypt.RSASigner.from_string(private, key_id=kid), claims)
    return out.decode()


async def measure(n: int, hang: bool) -> tuple[list[float], int]:
    private, public = keys()
    release = threading.Event()
    calls = [0]
    clock = [0.0]

    def fetch() -> tuple[dict[str, str], float | None]:
        calls[0] += 1
        if hang and calls[0] > 1:
            release.wait(60)
            raise TimeoutError("hung")
        return {"k1": public}, 300.0

    cache = CertCache(fetch, clock=lambda: clock[0], fetch_timeout_s=5.0)
    check = oidc_verifier(AUD, SA, certs=cache)
    valid, junk = token(private, "k1"), [token(private, f"junk{i}") for i in range(20)]
    assert await check(valid)
    clock[0] += 400  # expired: the refresh runs (and hangs, when asked) in the background
    pending = []
    lat: list[float] = []
    for i in range(n):
        pending.append(asyncio.ensure_future(check(junk[i % len(junk)])))
        t0 = time.perf_counter()
        ok = await check(valid)
        lat.append((time.perf_counter() - t0) * 1000)
        assert ok
    release.set()
    await cache.settle()
    await asyncio.gather(*pending)
    return lat, calls[0]


def summary(label: str, lat: list[float], calls: int) -> None:
    q = statistics.quantiles(lat, n=100)
    print(
        f"{label:<26} p50 {q[49]:6.2f} ms  p99 {q[98]:6.2f} ms  max {max(lat):6.2f} ms  "
        f"certificate fetches: {calls}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=500)
    args = ap.parse_args()
    healthy = asyncio.run(measure(args.tokens, hang=False))
    hung = asyncio.run(measure(args.tokens, hang=True))
    summary("healthy endpoint", *healthy)
    summary("hanging endpoint", *hung)
    print(
        f"p99 ratio hanging/healthy: {statistics.quantiles(hung[0], n=100)[98] / statistics.quantiles(healthy[0], n=100)[98]:.2f}x"
    )


if __name__ == "__main__":
    main()
