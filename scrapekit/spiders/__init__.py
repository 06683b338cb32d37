"""Spiders for common site shapes, as in Scrapy: rules over links, and sitemaps."""

from scrapekit.spiders.crawl import CrawlSpider, Rule
from scrapekit.spiders.sitemap import SitemapSpider

__all__ = ["CrawlSpider", "Rule", "SitemapSpider"]
