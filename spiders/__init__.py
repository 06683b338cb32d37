"""The project's spiders: every Spider subclass in this package is found by `scrapekit list`."""
