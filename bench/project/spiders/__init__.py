"""Spiders of the bench project (SPIDER_MODULES = ["spiders"])."""
