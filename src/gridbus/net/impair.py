"""What a link does to traffic: delay, jitter, loss, bandwidth, like CORE's link settings.

Every setting applies to each direction of a host's link to the switch.  The
kernel tools come first where the kernel has them: ``netem`` for delay,
jitter and loss (detected once per LAN; many kernels, this one included,
lack it) and ``tbf`` for the bandwidth limit.  Without netem, delay, jitter
and loss are made by :mod:`gridbus.net.stage`, a userspace process in the
switch namespace (its accuracy and cost are measured by ``gridbus net bench``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import NetError

__all__ = ["Impairment", "netem_args", "tbf_args"]


@dataclass(frozen=True)
class Impairment:
    """Per-direction settings of one link; all zero is a clean link.

    ``delay_ms`` ± ``jitter_ms`` (uniform, like netem's default), ``loss_pct``
    of frames dropped at random, ``rate_mbit`` the bandwidth limit (0 = none).
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    rate_mbit: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
                raise NetError(f"link setting {name}={value!r} is not a finite number")
            if value < 0:
                raise NetError(f"link setting {name}={value!r} is negative")
        if self.loss_pct > 100:
            raise NetError(f"link setting loss_pct={self.loss_pct!r} is above 100")
        if self.jitter_ms > self.delay_ms:
            raise NetError(
                f"link setting jitter_ms={self.jitter_ms!r} is larger than delay_ms={self.delay_ms!r} "
                "(a frame cannot leave before it arrived)"
            )

    @classmethod
    def parse(cls, text: str) -> Impairment:
        """``delay=10ms,jitter=5ms,loss=2%,rate=1mbit`` (units optional) → Impairment."""
        units = {"delay": "ms", "jitter": "ms", "loss": "%", "rate": "mbit"}
        values: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, raw = part.partition("=")
            key = key.strip().lower()
            if not sep or key not in units:
                raise NetError(f"link setting {part!r}: expected one of {', '.join(k + '=' for k in units)}")
            number = raw.strip().lower().removesuffix(units[key])
            try:
                values[key] = float(number)
            except ValueError:
                raise NetError(f"link setting {part!r}: {raw.strip()!r} is not a number (in {units[key]})") from None
        return cls(
            values.get("delay", 0.0), values.get("jitter", 0.0), values.get("loss", 0.0), values.get("rate", 0.0)
        )

    @property
    def clean(self) -> bool:
        return not (self.delay_ms or self.jitter_ms or self.loss_pct or self.rate_mbit)

    @property
    def needs_stage(self) -> bool:
        """Whether delay, jitter or loss are asked for (netem, or else the userspace stage)."""
        return bool(self.delay_ms or self.jitter_ms or self.loss_pct)

    def label(self) -> str:
        if self.clean:
            return "clean"
        parts = []
        if self.delay_ms or self.jitter_ms:
            parts.append(f"{self.delay_ms:g} ms" + (f" ± {self.jitter_ms:g} ms" if self.jitter_ms else ""))
        if self.loss_pct:
            parts.append(f"{self.loss_pct:g} % loss")
        if self.rate_mbit:
            parts.append(f"{self.rate_mbit:g} Mbit/s")
        return ", ".join(parts)


def tbf_args(rate_mbit: float) -> list[str]:
    """``tc qdisc`` arguments of a token bucket at ``rate_mbit`` (burst ≥ one jumbo frame)."""
    rate_bit = int(rate_mbit * 1e6)
    burst = max(16 * 1024, rate_bit // 8 // 100)  # 10 ms of traffic, at least 16 KiB
    return ["tbf", "rate", f"{rate_bit}bit", "burst", str(burst), "latency", "200ms"]


def netem_args(impairment: Impairment) -> list[str]:
    """``tc qdisc`` arguments of netem for delay, jitter, loss and rate."""
    args = ["netem"]
    if impairment.delay_ms or impairment.jitter_ms:
        args += ["delay", f"{impairment.delay_ms}ms"]
        if impairment.jitter_ms:
            args += [f"{impairment.jitter_ms}ms"]
    if impairment.loss_pct:
        args += ["loss", f"{impairment.loss_pct}%"]
    if impairment.rate_mbit:
        args += ["rate", f"{int(impairment.rate_mbit * 1e6)}bit"]
    args += ["limit", "100000"]
    return args
