"""The one source of scrapekit's version: User-Agent, `scrapekit version`, package metadata."""

__version__ = "0.1.0"
