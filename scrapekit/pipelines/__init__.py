"""Pipelines: what happens to items after the callbacks (PIPELINES, FEEDS, FEED_EXPORT_FIELDS)."""

from scrapekit.pipelines.base import Pipeline
from scrapekit.pipelines.feeds import FeedPipeline
from scrapekit.pipelines.manager import PipelineManager, PipelineStatistics

__all__ = ["FeedPipeline", "Pipeline", "PipelineManager", "PipelineStatistics"]
