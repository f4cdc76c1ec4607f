"""A deployment's log budget: a token bucket over output lines (decide half; the tailer applies it).

A container can print far faster than anyone reads, and every stored line costs database space and
the one watcher's time. Over budget, lines are dropped — and counted, so the log says how many.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LineBudget:
    rate: float  # lines per second, sustained; 0 means no budget
    burst: float  # lines that may come at once
    tokens: float = -1.0
    at: float = 0.0
    dropped: int = 0  # not yet reported

    def take(self, n: int, now: float) -> int:
        """How many of `n` new lines may be kept now (the rest count as dropped)."""
        if self.rate <= 0:
            return n
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        kept = min(n, int(self.tokens))
        self.tokens -= kept
        self.dropped += n - kept
        return kept

    def report(self) -> str | None:
        """The system line for what was dropped since the last report, if anything was."""
        if not self.dropped:
            return None
        n, self.dropped = self.dropped, 0
        return f"{n} output lines dropped: over this deployment's log budget of {self.rate:g} lines/s"
