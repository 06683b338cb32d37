"""`scrapekit settings [--get KEY] [--spider NAME] [-s K=V]...`: the effective settings.

Every setting as `KEY = VALUE  # layer: source`, in docs/settings.md's order, VALUE as JSON;
the layer is where the value came from: default, project (settings.toml), spider (the
spider's custom_settings, and its login_url / login_check_url attributes), env (SCRAPEKIT_*)
or cmdline (-s). `--get KEY` prints the value alone. Inside a project the project's layer
applies, outside one the defaults and the layers above them (as `runspider` sees them).
Secrets are never printed: a setting whose name looks secret (a token, a password) shows ***,
and so do secret-named entries inside a value (an Authorization header in
DEFAULT_REQUEST_HEADERS) and passwords in URLs, as in the logs (log.py); PROXY's whole
userinfo is hidden (a lone name there is often a token).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from scrapekit.cli.common import add_setting_option, load_project_settings, spider_loader
from scrapekit.cli.runspider import load_settings
from scrapekit.exceptions import UsageError
from scrapekit.log import REDACTED, hide_userinfo, is_secret, redact, scrub_text
from scrapekit.session.login import SPIDER_ATTRIBUTES
from scrapekit.settings import Settings
from scrapekit.settings.validate import unknown_setting
from scrapekit.spider import Spider


def register(commands: Any) -> None:
    """Add the `settings` subcommand."""
    parser = commands.add_parser(
        "settings", help="print the effective settings and the layer each came from"
    )
    parser.add_argument("--get", metavar="KEY", help="print only the value of KEY")
    parser.add_argument(
        "--spider", metavar="NAME", help="include that spider's custom_settings (a project's)"
    )
    add_setting_option(parser, "override a setting, as on `crawl` (may be repeated)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the settings (or one value); an unknown --get KEY exits 2 naming close matches."""
    settings = effective_settings(args.settings, args.spider)
    if args.get is not None:
        if args.get not in settings:
            raise unknown_setting(args.get, "--get")
        print(_plain(shown_value(args.get, settings[args.get])))
        return 0
    width = max(len(key) for key in settings)
    for key in settings:
        value = json.dumps(shown_value(key, settings[key]), ensure_ascii=False)
        print(f"{key:<{width}} = {value}  # {where(settings, key)}")
    return 0


def effective_settings(cmdline: list[str], spider: str | None) -> Settings:
    """The settings a crawl would get, with the spider's layer when `spider` is given."""
    if spider is None:
        return load_settings(cmdline)
    if not spider:
        raise UsageError("--spider: expected a spider name (see `scrapekit list`)")
    _, settings = load_project_settings(cmdline)
    spider_cls = spider_loader(settings).load(spider)
    _, settings = load_project_settings(cmdline, spider_cls=spider_cls)
    _login_attributes(settings, spider_cls)
    return settings


def _login_attributes(settings: Settings, spider_cls: type[Spider]) -> None:
    """The spider's login_url / login_check_url class attributes, at the spider layer (a
    crawl sets them from the instance, which may depend on -a arguments: see session/login.py)."""
    for key, attribute in SPIDER_ATTRIBUTES.items():
        value = getattr(spider_cls, attribute, "")
        if value and isinstance(value, str):
            source = f"{spider_cls.__name__}.{attribute}"
            settings.set(key, value, priority="spider", source=source)


#: Settings holding a URL whose userinfo is a credential however it is written.
CREDENTIAL_URLS = frozenset({"PROXY"})


def shown_value(key: str, value: Any) -> Any:
    """The value as it may be shown: secrets hidden (see the module docstring)."""
    if key in CREDENTIAL_URLS and isinstance(value, str):
        return hide_userinfo(value)
    return redact({key: value})[key]


def where(settings: Settings, key: str) -> str:
    """`layer: source` (just the layer when they say the same), secrets hidden."""
    layer, source = settings.layer(key), settings.source(key)
    if source.startswith(f"-s {key}=") and is_secret(key):
        source = f"-s {key}={REDACTED}"
    elif source.startswith(f"-s {key}=") and key in CREDENTIAL_URLS:
        source = f"-s {key}={hide_userinfo(source.partition('=')[2])}"
    source = scrub_text(source)
    return layer if source == layer else f"{layer}: {source}"


def _plain(value: Any) -> str:
    """--get's output: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
