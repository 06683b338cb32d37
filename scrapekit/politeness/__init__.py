"""Politeness: the gates between the scheduler and the workers, and the road back for retries."""

from __future__ import annotations

from scrapekit.politeness.ratelimit import LocalRateLimiter, RateLimiter
from scrapekit.politeness.retry import GiveUp, Retry, RetryPolicy
from scrapekit.politeness.robots import RobotsCache

__all__ = ["GiveUp", "LocalRateLimiter", "RateLimiter", "Retry", "RetryPolicy", "RobotsCache"]
