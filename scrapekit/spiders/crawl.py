"""CrawlSpider: follow a site's links by rules, as in Scrapy.

Stage 1 of the flow (what the user writes). Each `Rule` pairs a LinkExtractor with what to do
with the pages its links lead to: a callback, and whether to follow their links in turn. The
requests a CrawlSpider makes name their callback by spider method (`_rule_callback`) and their
rule by its index in `meta["rule"]`, so the durable SQLite frontier can store them and a
resumed crawl finds the rule again; `Rule.cb_kwargs` are applied when the page is parsed,
never stored. Do not override `parse`: pages without a callback go through the rules.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from scrapekit._types import CallbackOutput, CallbackRef, Output
from scrapekit.callbacks import iterate_output
from scrapekit.exceptions import ConfigError
from scrapekit.links import Link, LinkExtractor
from scrapekit.request import Request
from scrapekit.spider import Spider

if TYPE_CHECKING:
    from scrapekit.exceptions import FetchError
    from scrapekit.response import Response

#: The meta key holding the index of the rule that made a request.
RULE_META_KEY = "rule"

ProcessLinks = Callable[[list[Link]], Iterable[Link]]
ProcessRequest = Callable[[Request, "Response"], "Request | None"]


class Rule:
    """How a CrawlSpider treats one kind of link.

    Args:
        link_extractor: which links of a page this rule takes (default: every link).
        callback: the spider method (or its name) that parses the pages; None: none.
        cb_kwargs: keyword arguments for the callback.
        follow: whether the rules apply to those pages' links too; None: True exactly when
            there is no callback.
        process_links: a method (or its name) filtering the list of links (e.g. to rewrite them).
        process_request: a method (or its name) given each (request, response); returns the
            request to send, another one, or None to skip it.
        errback: a method (or its name) receiving the error when a request fails for good.
    """

    def __init__(
        self,
        link_extractor: LinkExtractor | None = None,
        callback: CallbackRef = None,
        cb_kwargs: dict[str, Any] | None = None,
        follow: bool | None = None,
        process_links: ProcessLinks | str | None = None,
        process_request: ProcessRequest | str | None = None,
        errback: Callable[..., Any] | str | None = None,
    ) -> None:
        self.link_extractor = link_extractor if link_extractor is not None else LinkExtractor()
        self.callback = callback
        self.cb_kwargs = dict(cb_kwargs or {})
        self.follow = follow if follow is not None else callback is None
        self.process_links = process_links
        self.process_request = process_request
        self.errback = errback

    def __repr__(self) -> str:
        return f"<Rule {self.link_extractor!r} callback={self.callback!r} follow={self.follow}>"


@dataclasses.dataclass(frozen=True, slots=True)
class _BoundRule:
    """A Rule with its method names resolved on one spider instance."""

    extractor: LinkExtractor
    callback: Callable[..., CallbackOutput] | None
    cb_kwargs: dict[str, Any]
    follow: bool
    process_links: ProcessLinks | None
    process_request: ProcessRequest | None
    errback: Callable[..., Any] | None


class CrawlSpider(Spider):
    """A Spider that follows links by `rules`; the start pages go to `parse_start_url` too.

    For each page, every rule's links are taken in the order of `rules`; a link already taken
    by an earlier rule is not taken again (the first matching rule wins).
    """

    #: The rules, in order of precedence.
    rules: ClassVar[Sequence[Rule]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rules = [self._bind(index, rule) for index, rule in enumerate(self.rules)]

    async def start(self) -> AsyncIterator[Request]:
        """One request per `start_urls` entry, parsed by the rules (and `parse_start_url`)."""
        for url in self.start_urls:
            yield Request(url, callback=self._parse)

    def resolve_callback(self, callback: CallbackRef, *, default: bool = True) -> Any:
        """As Spider's, except that a request without a callback goes through the rules."""
        if callback is None and default:
            return self._parse
        return super().resolve_callback(callback, default=default)

    def request_for(self, url: str) -> Request:
        """The request the crawl would make for a link to `url`: through the first rule whose
        extractor takes it (allow/deny, domains and extensions: restrict_css, restrict_xpaths,
        restrict_text and process_value need the linking page), else as a start page. What
        `scrapekit parse URL` runs when no callback is named."""
        for index, rule in enumerate(self._rules):
            if rule.extractor.matches(url):
                return Request(url, callback=self._rule_callback, meta={RULE_META_KEY: index})
        return Request(url, callback=self._parse)

    def callback_name(self, request: Request) -> str:
        """What parses `request`, for people: the rule's callback (`rules[0] parse_item`,
        `rules[1] (follow)`) for a rule's request, else the callback's name."""
        callback = self.resolve_callback(request.callback)
        index = request.meta.get(RULE_META_KEY)
        if (
            getattr(callback, "__func__", None) is CrawlSpider._rule_callback
            and isinstance(index, int)
            and 0 <= index < len(self._rules)
        ):
            return f"rules[{index}] {getattr(self._rules[index].callback, '__name__', '(follow)')}"
        return str(getattr(callback, "__name__", callback))

    def parse_start_url(self, response: Response, **kwargs: Any) -> CallbackOutput:
        """Called with each start page (and each page requested without a callback); override
        it to extract items from them. Its outputs come before the followed links."""
        return None

    def process_results(self, response: Response, results: AsyncIterator[Output]) -> Any:
        """Called with every rule callback's outputs; override to change them (returns them)."""
        return results

    async def parse_with_rules(
        self,
        response: Response,
        callback: Callable[..., CallbackOutput] | None,
        cb_kwargs: dict[str, Any],
        follow: bool = True,
    ) -> AsyncIterator[Output]:
        """The callback's outputs (through `process_results`), then the rules' requests if
        `follow`."""
        if callback is not None:
            outputs = iterate_output(callback(response, **cb_kwargs))
            async for output in iterate_output(self.process_results(response, outputs)):
                yield output
        if follow:
            for request in self.requests_to_follow(response):
                yield request

    def requests_to_follow(self, response: Response) -> Iterable[Request]:
        """The requests every rule makes from the page's links, each URL once per page."""
        if not response.is_html:
            return
        taken: set[str] = set()
        for index, rule in enumerate(self._rules):
            links = [
                link for link in rule.extractor.extract_links(response) if link.url not in taken
            ]
            if rule.process_links is not None:
                links = list(rule.process_links(links))
            for link in links:
                taken.add(link.url)
                request: Request | None = Request(
                    link.url,
                    callback=self._rule_callback,
                    errback=self._rule_errback if rule.errback is not None else None,
                    meta={RULE_META_KEY: index, "link_text": link.text},
                )
                if rule.process_request is not None:
                    assert request is not None
                    request = rule.process_request(request, response)
                if request is not None:
                    yield request

    # -- the callbacks stored with requests (by name) ----------------------------------------

    def _parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Output]:
        """A start page, or a page requested without a callback: parse_start_url, then rules."""
        return self.parse_with_rules(response, self.parse_start_url, kwargs, follow=True)

    def _rule_callback(self, response: Response, **kwargs: Any) -> AsyncIterator[Output]:
        """A page a rule's link led to: that rule's callback, then its links if it follows."""
        rule = self._rule_of(response.meta)
        return self.parse_with_rules(
            response, rule.callback, {**rule.cb_kwargs, **kwargs}, follow=rule.follow
        )

    def _rule_errback(self, error: FetchError) -> Any:
        """A rule's request failed for good: that rule's errback."""
        request = error.request
        rule = self._rule_of(request.meta if request is not None else {})
        return None if rule.errback is None else rule.errback(error)

    def _rule_of(self, meta: dict[str, Any]) -> _BoundRule:
        index = meta.get(RULE_META_KEY)
        if not isinstance(index, int) or not 0 <= index < len(self._rules):
            raise LookupError(
                f"{type(self).__name__}: request meta {RULE_META_KEY!r}={index!r} names no rule "
                f"(the spider has {len(self._rules)}; were its rules changed before a resume?)"
            )
        return self._rules[index]

    def _bind(self, index: int, rule: Rule) -> _BoundRule:
        def method(value: Any, field: str) -> Any:
            name = getattr(value, "__name__", "")
            if inspect.isfunction(value) and getattr(type(self), name, None) is value:
                return getattr(self, name)  # `callback=parse_item` in the class body
            if value is None or callable(value):
                return value
            found = getattr(self, value, None) if isinstance(value, str) else None
            if not callable(found):
                raise ConfigError(
                    f"spider {self.name!r}: rules[{index}] {field}={value!r} is not a method of "
                    f"{type(self).__name__}; define it or pass a callable"
                )
            return found

        return _BoundRule(
            extractor=rule.link_extractor,
            callback=method(rule.callback, "callback"),
            cb_kwargs=rule.cb_kwargs,
            follow=rule.follow,
            process_links=method(rule.process_links, "process_links"),
            process_request=method(rule.process_request, "process_request"),
            errback=method(rule.errback, "errback"),
        )
