"""Tests for the validators and the key → validator table in scrapekit/settings/validate.py."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import pytest

from scrapekit.exceptions import SettingsError
from scrapekit.settings.validate import (
    VALIDATORS,
    Bool,
    Choice,
    ComponentMap,
    FeedMap,
    Float,
    Int,
    IntList,
    Invalid,
    Str,
    StrList,
    StrMap,
    Validator,
    check,
    check_text,
)

BOOL_TEXT = {
    "true": True,
    "FALSE": False,
    "1": True,
    "0": False,
    "Yes": True,
    "no": False,
    " on ": True,
    "Off": False,
}
"""Every spelling Bool.parse_text accepts (in some case), with what it means."""


class Pipeline:
    """A stand-in component class, as the Python API may pass one."""


@pytest.mark.parametrize(
    ("validator", "value", "expected"),
    [
        pytest.param(Int(min=1), 1, 1, id="int-at-min"),
        pytest.param(Int(min=100, max=599), 599, 599, id="int-at-max"),
        pytest.param(Float(min=0), 0, 0.0, id="float-takes-int"),
        pytest.param(Float(gt=0), 0.001, 0.001, id="float-above-gt"),
        pytest.param(Bool(), False, False, id="bool"),
        pytest.param(Str(), "", "", id="str-empty"),
        pytest.param(Str(path=True), PurePosixPath("a/b.json"), "a/b.json", id="str-path"),
        pytest.param(Choice("auto", "json"), "json", "json", id="choice"),
        pytest.param(Choice("INFO", "DEBUG", ignore_case=True), "debug", "DEBUG", id="choice-case"),
        pytest.param(StrList(), ("a", "b"), ["a", "b"], id="strlist-tuple"),
        pytest.param(IntList(min=100, max=599), [403, 404], [403, 404], id="intlist"),
        pytest.param(StrMap(), {"Accept": "*/*"}, {"Accept": "*/*"}, id="strmap"),
        pytest.param(
            ComponentMap(), {"a.B": 100, "c.D": False}, {"a.B": 100, "c.D": False}, id="components"
        ),
        pytest.param(ComponentMap(), {Pipeline: 1}, {Pipeline: 1}, id="components-class"),
        pytest.param(
            FeedMap(),
            {"out.csv": {"format": "csv", "overwrite": True}, "b.jsonl": {}},
            {"out.csv": {"format": "csv", "overwrite": True}, "b.jsonl": {}},
            id="feeds",
        ),
        pytest.param(FeedMap(), {PurePosixPath("o.json"): {}}, {"o.json": {}}, id="feeds-path"),
    ],
)
def test_convert_accepts(validator: Validator, value: object, expected: object) -> None:
    """A good value is accepted and converted to the setting's type."""
    result = validator.convert(value)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("validator", "value", "message"),
    [
        pytest.param(Int(min=1), 0, "expected an integer >= 1, got 0", id="int-below"),
        pytest.param(Int(), True, "expected an integer, got True", id="int-bool"),
        pytest.param(Int(), 8.0, "expected an integer, got 8.0", id="int-float"),
        pytest.param(Int(), "8", "expected an integer, got '8'", id="int-str"),
        pytest.param(
            Int(min=0, unit="bytes"), -1, "expected a whole number of bytes >= 0", id="int-unit"
        ),
        pytest.param(
            Float(min=0, unit="requests per second"),
            "fast",
            "expected a number of requests per second >= 0, got 'fast'",
            id="float-str",
        ),
        pytest.param(Float(gt=0), 0, "expected a number > 0, got 0", id="float-gt"),
        pytest.param(Float(), False, "expected a number, got False", id="float-bool"),
        pytest.param(Float(), float("inf"), "expected a number, got inf", id="float-inf"),
        pytest.param(Bool(), 1, "expected true or false, got 1", id="bool-int"),
        pytest.param(Bool(), "true", "expected true or false, got 'true'", id="bool-str"),
        pytest.param(Str(), 3, "expected a string, got 3", id="str-int"),
        pytest.param(Str(), PurePosixPath("a"), "expected a string", id="str-not-path"),
        pytest.param(
            Choice("auto", "json"), "JSON", "expected one of 'auto', 'json', got 'JSON'", id="case"
        ),
        pytest.param(StrList(), "a,b", "expected a list of strings, got 'a,b'", id="strlist-str"),
        pytest.param(StrList(), ["a", 1], "(bad item 1)", id="strlist-item"),
        pytest.param(
            IntList(min=100, max=599, unit="HTTP status codes"),
            [404, 42],
            "expected a list of HTTP status codes from 100 to 599, got [404, 42] (bad item 42)",
            id="intlist-range",
        ),
        pytest.param(IntList(), [True], "(bad item True)", id="intlist-bool"),
        pytest.param(StrMap(), {"X-N": 1}, "(bad entry 'X-N': 1)", id="strmap-value"),
        pytest.param(StrMap(), ["a"], "expected a table of strings to strings", id="strmap-list"),
        pytest.param(ComponentMap(), {"Validate": 1}, "expected a dotted path", id="not-dotted"),
        pytest.param(ComponentMap(), {"a.B": True}, "integer order or false", id="order-true"),
        pytest.param(ComponentMap(), {"a.B": "1"}, "integer order or false", id="order-str"),
        pytest.param(ComponentMap(), {3: 1}, "expected a dotted path or a class", id="key-int"),
        pytest.param(
            FeedMap(),
            {"a.xml": {"format": "xml"}},
            "feed 'a.xml', option 'format': expected one of 'jsonl', 'json', 'csv', got 'xml'",
            id="feed-format",
        ),
        pytest.param(
            FeedMap(),
            {"a.csv": {"overwite": True}},
            "feed 'a.csv': unknown option 'overwite'; did you mean 'overwrite'?",
            id="feed-option",
        ),
        pytest.param(
            FeedMap(), {"a.csv": {"overwrite": "yes"}}, "expected true or false", id="feed-bool"
        ),
        pytest.param(FeedMap(), {"a.csv": True}, "table of options for feed", id="feed-options"),
        pytest.param(FeedMap(), {"": {}}, "expected a feed path, got ''", id="feed-path"),
    ],
)
def test_convert_rejects(validator: Validator, value: object, message: str) -> None:
    """A bad value is rejected with an "expected …, got …" phrase."""
    with pytest.raises(Invalid) as caught:
        validator.convert(value)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("validator", "text", "expected"),
    [
        pytest.param(Int(min=1), " 8 ", 8, id="int"),
        pytest.param(Float(gt=0), "2.5", 2.5, id="float"),
        pytest.param(Float(gt=0), "3", 3.0, id="float-int"),
        *(
            pytest.param(Bool(), text, expected, id=f"bool-{text}")
            for text, expected in BOOL_TEXT.items()
        ),
        pytest.param(Str(), " as is ", " as is ", id="str"),
        pytest.param(Choice("INFO", "DEBUG", ignore_case=True), "debug", "DEBUG", id="choice"),
        pytest.param(StrList(), "a, b,,c", ["a", "b", "c"], id="strlist-commas"),
        pytest.param(StrList(), "", [], id="strlist-empty"),
        pytest.param(StrList(), '["a,b", "c"]', ["a,b", "c"], id="strlist-json"),
        pytest.param(IntList(), "403, 404", [403, 404], id="intlist-commas"),
        pytest.param(IntList(), "[500]", [500], id="intlist-json"),
        pytest.param(StrMap(), '{"Accept": "*/*"}', {"Accept": "*/*"}, id="strmap"),
        pytest.param(ComponentMap(), '{"a.B": 1, "c.D": false}', {"a.B": 1, "c.D": False}, id="cm"),
        pytest.param(
            FeedMap(), '{"o.csv": {"overwrite": true}}', {"o.csv": {"overwrite": True}}, id="feeds"
        ),
    ],
)
def test_parse_text_accepts(validator: Validator, text: str, expected: Any) -> None:
    """Text from the environment or `-s` is read by the setting's type."""
    assert validator.parse_text(text) == expected


@pytest.mark.parametrize(
    ("validator", "text", "message"),
    [
        pytest.param(Int(min=1), "lots", "expected an integer >= 1, got 'lots'", id="int-word"),
        pytest.param(Int(min=1), "0", "expected an integer >= 1, got '0'", id="int-range"),
        pytest.param(Int(), "8.0", "got '8.0'", id="int-float"),
        pytest.param(Float(), "nan", "expected a number, got 'nan'", id="float-nan"),
        pytest.param(Float(), "", "expected a number, got ''", id="float-empty"),
        pytest.param(Bool(), "maybe", "expected true/false, 1/0, yes/no or on/off", id="bool"),
        pytest.param(Choice("auto"), "Auto", "expected one of 'auto', got 'Auto'", id="choice"),
        pytest.param(StrList(), "[1, 2]", "(bad item 1)", id="strlist-json-ints"),
        pytest.param(StrList(), '["a"', "as a JSON list", id="strlist-bad-json"),
        pytest.param(IntList(), "403,x", "(bad item 'x')", id="intlist-word"),
        pytest.param(StrMap(), "{'a': 'b'}", "as a JSON object", id="strmap-bad-json"),
        pytest.param(StrMap(), "[]", "expected a table of strings to strings", id="strmap-list"),
        pytest.param(FeedMap(), "out.csv", "as a JSON object", id="feeds-not-json"),
    ],
)
def test_parse_text_rejects(validator: Validator, text: str, message: str) -> None:
    """Text that does not read as the setting's type is rejected with a phrase showing it."""
    with pytest.raises(Invalid) as caught:
        validator.parse_text(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


BAD_VALUES: dict[str, tuple[object, str]] = {
    "SPIDER_MODULES": ("spiders", "a list of strings"),
    "STATE_DIR": (None, "a path"),
    "CLOSESPIDER_ERRORCOUNT": (-1, "an integer >= 0"),
    "CLOSESPIDER_ITEMCOUNT": (-1, "an integer >= 0"),
    "CLOSESPIDER_PAGECOUNT": (-1, "an integer >= 0"),
    "CLOSESPIDER_TIMEOUT": (-0.5, "a duration >= 0"),
    "CLOSE_TIMEOUT": (-1, "a number of seconds >= 0"),
    "CONCURRENCY": (0, "an integer >= 1"),
    "DEPTH_LIMIT": (-1, "an integer >= 0"),
    "URL_LENGTH_LIMIT": (-1, "an integer >= 0"),
    "DEFAULT_REQUEST_HEADERS": ({"Accept": None}, "a table of strings to strings"),
    "DOWNLOAD_TIMEOUT": (0, "a number of seconds > 0"),
    "HTTP2": ("false", "true or false"),
    "HTTPERROR_ALLOWED_CODES": ([600], "a list of HTTP status codes from 100 to 599"),
    "MAX_RESPONSE_BYTES": (-1, "a whole number of bytes >= 0"),
    "REDIRECT_ENABLED": (1, "true or false"),
    "REDIRECT_MAX_TIMES": (True, "an integer >= 0"),
    "USER_AGENT": (b"bot", "a string"),
    "WARN_RESPONSE_BYTES": (1.5, "a whole number of bytes >= 0"),
    "FRESH": ("sometimes", "true or false"),
    "FRONTIER": ("redis-cluster", "one of"),
    "MAX_ERRORS": (-1, "an integer >= 0"),
    "RECRAWL_AFTER": ("7 days", "a duration >= 0"),
    "RUN_LOCK_WAIT": ("forever", "true or false"),
    "START_READAHEAD": (-5, "an integer >= 0"),
    "AUTOTHROTTLE": ("on", "true or false"),
    "AUTOTHROTTLE_STEP": (0, "a number of requests per second > 0"),
    "BURST": (0, "an integer >= 1"),
    "CONCURRENCY_PER_HOST": (-1, "an integer >= 0"),
    "DOWNLOAD_DELAY": (-1, "a number of seconds >= 0"),
    "RANDOMIZE_DELAY": ("yes", "true or false"),
    "RATE": ("fast", "a number of requests per second >= 0"),
    "RATE_LIMIT_KEY": ("ip", "one of 'host', 'domain'"),
    "RATE_MAX": (0, "a number of requests per second > 0"),
    "RATE_MIN": (-1, "a number of requests per second > 0"),
    "RETRY_AFTER_MAX": (-5, "a number of seconds >= 0"),
    "RETRY_BACKOFF_BASE": ("1s", "a number of seconds >= 0"),
    "RETRY_BACKOFF_MAX": (-1, "a number of seconds >= 0"),
    "RETRY_ENABLED": (3, "true or false"),
    "RETRY_HTTP_CODES": ([700], "a list of HTTP status codes from 100 to 599"),
    "RETRY_TIMES": (-1, "an integer >= 0"),
    "ROBOTSTXT_OBEY": ("true", "true or false"),
    "ROBOTSTXT_RETRY_SECONDS": (-1, "a number of seconds >= 0"),
    "ROBOTSTXT_TIMEOUT": (0, "a number of seconds > 0"),
    "ROBOTSTXT_USER_AGENT": (1, "a string"),
    "PROXY": ("socks5://proxy:1080", "an http:// or https:// proxy URL"),
    "HTTPCACHE_ENABLED": ("on", "true or false"),
    "HTTPCACHE_EXPIRATION_SECS": ("1 day", "a duration >= 0"),
    "HTTPCACHE_IGNORE_HTTP_CODES": ([99], "a list of HTTP status codes from 100 to 599"),
    "COOKIES_ENABLED": ("yes", "true or false"),
    "COOKIES_FLUSH_SECONDS": (0, "a number of seconds > 0"),
    "COOKIES_PERSIST": (1, "true or false"),
    "LOGIN_CHECK_URL": (5, "a string"),
    "LOGIN_URL": (["/login"], "a string"),
    "MAX_RELOGINS": (-1, "an integer >= 0"),
    "PERSIST_SESSION_COOKIES": ("no", "true or false"),
    "SESSION_NAME": (None, "a string"),
    "FEEDS": (["out.csv"], "a table of output paths to feed options"),
    "FEED_EXPORT_FIELDS": ([1], "a list of strings"),
    "PIPELINES": ({"a.B": "high"}, "an integer order or false"),
    "PIPELINES_BASE": ({"a.B": None}, "an integer order or false"),
    "LOG_FORMAT": ("text", "one of 'auto', 'console', 'json'"),
    "LOG_LEVEL": ("LOUD", "one of 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'"),
    "LOG_STATS_INTERVAL": ("1m", "a number of seconds >= 0"),
    "PROGRESS": (None, "true or false"),
    "STATS_FILE": (0, "a path"),
}


def test_bad_values_cover_every_key() -> None:
    """The bad-value table below has an example for every setting."""
    assert set(BAD_VALUES) == set(VALIDATORS)


@pytest.mark.parametrize(("key", "case"), [pytest.param(k, v, id=k) for k, v in BAD_VALUES.items()])
def test_check_names_key_type_and_source(key: str, case: tuple[object, str]) -> None:
    """A bad value fails with one line naming the key, the expected type and the source."""
    value, expected = case
    with pytest.raises(SettingsError) as caught:
        check(key, value, "settings.toml")
    message = str(caught.value)
    assert message.startswith(f"{key} (settings.toml): expected {expected}")
    assert "\n" not in message
    assert (caught.value.key, caught.value.source) == (key, "settings.toml")


def test_check_returns_converted_value() -> None:
    """check() returns the value in the setting's type (here an int where a float is expected)."""
    assert check("DOWNLOAD_TIMEOUT", 10, "settings.toml") == 10.0


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(
            "CONCURENCY",
            "CONCURENCY (settings.toml): unknown setting; did you mean CONCURRENCY?",
            id="typo",
        ),
        pytest.param(
            "log_level",
            "log_level (settings.toml): unknown setting; did you mean LOG_LEVEL?",
            id="lower-case",
        ),
        pytest.param(
            "ZZZ", "ZZZ (settings.toml): unknown setting (see docs/settings.md)", id="no-match"
        ),
    ],
)
def test_check_unknown_key(key: str, message: str) -> None:
    """An unknown key fails naming the closest real setting, if there is one."""
    with pytest.raises(SettingsError) as caught:
        check(key, 1, "settings.toml")
    assert str(caught.value) == message


def test_check_text_names_the_variable() -> None:
    """Text errors name what the user typed: the variable name with its prefix."""
    with pytest.raises(SettingsError) as caught:
        check_text("CONCURRENCY", "lots", "environment", prefix="SCRAPEKIT_")
    assert str(caught.value) == (
        "SCRAPEKIT_CONCURRENCY (environment): expected an integer >= 1, got 'lots'"
    )


def test_long_values_are_cut_short() -> None:
    """A huge bad value is shown cut short, so the error stays readable."""
    with pytest.raises(SettingsError) as caught:
        check("USER_AGENT", ["x" * 500], "settings.toml")
    assert len(str(caught.value)) < 120
    assert str(caught.value).endswith("...")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("7d", 604800.0),
     ("1w", 604800.0), (" 1.5H ", 5400.0), ("0", 0.0)],
)  # fmt: skip
def test_durations_take_a_unit(text: str, seconds: float) -> None:
    assert check_text("RECRAWL_AFTER", text, "-s") == seconds
    assert check("RECRAWL_AFTER", text, None) == seconds  # settings.toml may give text too


@pytest.mark.parametrize("text", ["7 days", "-1h", "h", "1y", "inf", "1e400"])
def test_a_bad_duration_names_the_forms(text: str) -> None:
    with pytest.raises(SettingsError, match=r"RECRAWL_AFTER.*90s, 30m, 2h, 7d"):
        check_text("RECRAWL_AFTER", text, "-s")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://alice:s3cret@proxy:3128", id="credentials"),
        pytest.param("https://proxy.example", id="https-no-port"),
        pytest.param("http://token@proxy:8080/", id="user-only-trailing-slash"),
        pytest.param("", id="none"),
    ],
)
def test_proxy_accepts_http_and_https_urls(url: str) -> None:
    """PROXY takes an http:// or https:// URL with optional credentials, or "" for none."""
    assert check("PROXY", url, "settings.toml") == url
    assert check_text("PROXY", url, "-s") == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("socks5://alice:s3cret@proxy:1080", "scheme", id="socks"),
        pytest.param("proxy:3128", "scheme", id="no-scheme"),
        pytest.param("http://alice:s3cret@proxy:port", "port", id="bad-port"),
        pytest.param("http://alice:s3/cret@proxy:3128", "port", id="slash-in-password"),
        pytest.param("http://alice:s3cret@proxy:3128/path", "no path", id="path"),
        pytest.param("http://alice:s3 cret@proxy:3128", "whitespace", id="space-in-password"),
        pytest.param("http://alice:s3cret@:3128", "no host", id="no-host"),
    ],
)
def test_a_bad_proxy_names_the_setting_never_the_password(url: str, problem: str) -> None:
    """A bad PROXY fails with one line naming the setting and the problem, password hidden."""
    with pytest.raises(SettingsError) as caught:
        check("PROXY", url, "-s PROXY=...")
    message = str(caught.value)
    assert message.startswith("PROXY (-s PROXY=...): expected an http:// or https:// proxy URL")
    assert problem in message
    assert "s3" not in message
    assert "cret" not in message
    assert "\n" not in message
