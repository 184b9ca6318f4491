"""
Address patterns and resolvers: ROOT_MAILCONF resolves a recipient address
the way ROOT_URLCONF resolves a path.

A pattern is a regular expression searched in the address. A
:class:`MailboxResolver` (what ``include()`` builds) removes the part of the
address it matched before its own patterns see the rest, so a resolver on
``@bugs.example.com`` hands ``onedest`` to its children, and one on
``^support-`` hands them what follows the prefix.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, TypeAlias

from django.core.signals import setting_changed

from .exceptions import NoReverseMatch, RecipientNotFound

if TYPE_CHECKING:  # pragma: no cover
    from .addresses import Address
    from .signing import Signature

# A route's ``signed``: False, True (a bound token must be for a From
# address), or a function of the request returning the addresses it may be for.
Signed: TypeAlias = "bool | Callable[[Any], Iterable[str]]"


class ResolverMatch:
    """What ``resolve()`` found: the view and what it is called with."""

    def __init__(
        self,
        func: Callable,
        args: tuple,
        kwargs: dict[str, Any],
        route_name: str | None = None,
        app_names: Sequence[str | None] = (),
        namespaces: Sequence[str | None] = (),
        route: str = "",
        address: str = "",
        tried: list | None = None,
        signed: Signed = False,
    ):
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.route_name = route_name
        self.app_names = [n for n in app_names if n]
        self.app_name = ":".join(self.app_names)
        self.namespaces = [n for n in namespaces if n]
        self.namespace = ":".join(self.namespaces)
        self.route = route
        self.address = address
        self.tried = tried or []
        # True (or a function naming the senders a bound token may be for)
        # when the route only takes addresses signed by mailserver.signing.
        self.signed = signed
        # The checked token, set by resolve() and the handler.
        self.signature: Signature | None = None
        target = getattr(func, "view_class", func)
        qualname = getattr(target, "__qualname__", type(target).__qualname__)
        self._func_path = f"{target.__module__}.{qualname}"
        self.view_name = ":".join([*self.namespaces, route_name or self._func_path])

    # Django's name, for code written against ResolverMatch.
    @property
    def url_name(self) -> str | None:
        return self.route_name

    def __getitem__(self, index):
        return (self.func, self.args, self.kwargs)[index]

    def __repr__(self) -> str:
        return (
            f"ResolverMatch(func={self._func_path}, args={self.args!r}, "
            f"kwargs={self.kwargs!r}, route_name={self.route_name!r}, "
            f"namespace={self.namespace!r}, route={self.route!r})"
        )


def _callable(view: str | Callable) -> Callable:
    if callable(view):
        return view
    module, _, attr = view.rpartition(".")
    if not module:
        raise ImportError(f"{view!r} is not a dotted path to a view")
    func = getattr(import_module(module), attr)
    if not callable(func):
        raise ImportError(f"{view!r} is not callable")
    return func


class MailboxPattern:
    """One route: a regular expression and the view it leads to."""

    def __init__(
        self,
        regex: str,
        callback: str | Callable,
        default_args: dict[str, Any] | None = None,
        name: str | None = None,
        signed: Signed = False,
    ):
        self.regex_string = regex
        self._callback = callback
        self.default_args = default_args or {}
        self.name = name
        self.signed = signed

    @functools.cached_property
    def regex(self) -> re.Pattern:
        return re.compile(self.regex_string)

    @property
    def callback(self) -> Callable:
        """The view; a dotted path is imported when the route is first used."""
        if not callable(self._callback):
            self._callback = _callable(self._callback)
        return self._callback

    def resolve(self, address: str) -> ResolverMatch | None:
        match = self.regex.search(address)
        if not match:
            return None
        kwargs = {k: v for k, v in match.groupdict().items() if v is not None}
        # As in Django: named groups become kwargs and the unnamed ones are
        # then ignored; without named groups, every group is an argument.
        args = () if kwargs else match.groups()
        kwargs.update(self.default_args)
        return ResolverMatch(
            self.callback,
            args,
            kwargs,
            self.name,
            route=self.regex_string,
            address=address,
            signed=self.signed,
        )

    def __repr__(self) -> str:
        return f"<MailboxPattern {self.regex_string!r}" + (
            f" [name={self.name!r}]>" if self.name else ">"
        )


class MailboxResolver:
    """A pattern that hands the rest of the address to a list of patterns."""

    def __init__(
        self,
        regex: str,
        mailconf_name: Any,
        default_kwargs: dict[str, Any] | None = None,
        app_name: str | None = None,
        namespace: str | None = None,
        signed: Signed = False,
    ):
        self.regex_string = regex
        self.mailconf_name = mailconf_name
        self.default_kwargs = default_kwargs or {}
        self.app_name = app_name
        self.namespace = namespace
        # An include() may be signed as a whole; its routes may add it.
        self.signed = signed

    @functools.cached_property
    def regex(self) -> re.Pattern:
        return re.compile(self.regex_string)

    @functools.cached_property
    def mailconf_module(self):
        if isinstance(self.mailconf_name, str):
            return import_module(self.mailconf_name)
        return self.mailconf_name

    @functools.cached_property
    def mailbox_patterns(self) -> list:
        """
        The module's ``mailpatterns``, or ``urlpatterns`` as the original
        API named them, or the list itself when one was included.
        """
        module = self.mailconf_module
        patterns = getattr(module, "mailpatterns", None)
        if patterns is None:
            patterns = getattr(module, "urlpatterns", module)
        try:
            iter(patterns)
        except TypeError:
            raise ImportError(
                f"The mailconf {self.mailconf_name!r} has no patterns: define "
                "'mailpatterns' (or 'urlpatterns') in it."
            ) from None
        return list(patterns)

    def strip(self, address: str) -> tuple[str, re.Match] | None:
        """The address without the part this resolver matches."""
        match = self.regex.search(address)
        if not match:
            return None
        return address[: match.start()] + address[match.end() :], match

    def resolve(self, address: str) -> ResolverMatch:
        stripped = self.strip(address)
        if stripped is None:
            raise RecipientNotFound(address=address, tried=[])
        rest, match = stripped
        kwargs = {k: v for k, v in match.groupdict().items() if v is not None}
        args = () if kwargs else match.groups()
        tried: list[list[Any]] = []
        for pattern in self.mailbox_patterns:
            try:
                sub_match = pattern.resolve(rest)
            except RecipientNotFound as e:
                tried.extend([pattern, *t] for t in e.tried or [[]])
                continue
            if sub_match is None:
                tried.append([pattern])
                continue
            sub_kwargs = {**kwargs, **self.default_kwargs, **sub_match.kwargs}
            sub_args = sub_match.args if sub_kwargs else args + sub_match.args
            return ResolverMatch(
                sub_match.func,
                sub_args,
                sub_kwargs,
                sub_match.route_name,
                [self.app_name, *sub_match.app_names],
                [self.namespace, *sub_match.namespaces],
                route=self.regex_string + sub_match.route,
                address=address,
                tried=sub_match.tried,
                signed=sub_match.signed or self.signed,
            )
        raise RecipientNotFound(address=address, tried=tried)

    def __repr__(self) -> str:
        name = self.mailconf_name
        if not isinstance(name, str):
            name = getattr(name, "__name__", "<list>")
        ns = f" ({self.app_name}:{self.namespace})" if self.namespace else ""
        return f"<MailboxResolver {name} {self.regex_string!r}{ns}>"

    # Reversing ---------------------------------------------------------

    def iter_routes(self, chain: tuple = ()):
        """Yield (namespaces, chain of resolvers, pattern) for every named route."""
        chain = (*chain, self)
        for pattern in self.mailbox_patterns:
            if isinstance(pattern, MailboxResolver):
                yield from pattern.iter_routes(chain)
            elif pattern.name:
                namespaces = tuple(r.namespace for r in chain if r.namespace)
                yield namespaces, chain, pattern


@functools.cache
def _get_cached_resolver(mailconf: str | None) -> MailboxResolver:
    return MailboxResolver("", mailconf)


def get_resolver(mailconf: str | None = None) -> MailboxResolver:
    """The root resolver of ``mailconf``, by default ROOT_MAILCONF; cached."""
    if mailconf is None:
        from .conf import settings

        mailconf = settings.ROOT_MAILCONF
        if not mailconf:
            from .exceptions import ImproperlyConfigured

            raise ImproperlyConfigured("ROOT_MAILCONF is not set")
    return _get_cached_resolver(mailconf)


def clear_cache() -> None:
    """Forget the root resolvers, as Django's ``clear_url_caches()``."""
    _get_cached_resolver.cache_clear()


def _mailconf_changed(*, setting: str, **kwargs) -> None:
    # As Django's test signals clear the URL caches when ROOT_URLCONF
    # changes: override_settings(ROOT_MAILCONF=...) takes effect at once.
    if setting == "ROOT_MAILCONF":
        clear_cache()


setting_changed.connect(_mailconf_changed, dispatch_uid="mailserver.resolvers.mailconf_changed")


def resolve(address: str | Address, mailconf: str | None = None) -> ResolverMatch:
    """
    Find the view for a recipient address, after normalising it (see
    :mod:`mailserver.addresses`). Raises RecipientNotFound.

    A route declared ``signed=True`` takes only an address whose subaddress
    is a valid token (:mod:`mailserver.signing`): otherwise this raises
    BadAddressSignature (5.7.1), so every way in refuses it before any view
    runs, runmailserver at RCPT time. ``match.signature`` holds what the
    token carried; whom a bound token was made for is checked once the
    message is known (the handler does it).
    """
    from .addresses import Address, parse

    if not isinstance(address, Address):
        address = parse(address)
    match = get_resolver(mailconf).resolve(str(address))
    if match.signed:
        from .signing import verify

        match.signature = verify(match, address)
    return match


def reverse(
    viewname: str,
    args: Sequence[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    mailconf: str | None = None,
    *,
    sign: bool = False,
    bind: str | None = None,
    expires: Any = None,
) -> str:
    """
    Build the address that reaches a named route, through includes and
    namespaces: ``reverse('tickets:reply', kwargs={'ticket': 42})``.

    A route declared ``signed=True`` needs ``sign=True``: the address then
    carries a token (:func:`mailserver.signing.sign_address`), made for the
    sender ``bind`` if given (only mail from that address is taken) and
    good until ``expires`` (a timedelta, seconds or a datetime) if given.

    Each level's regex is turned into candidate strings the way Django
    reverses URL patterns; a child's text goes after its parent's when the
    parent is anchored at the start (``^support-``) and before it otherwise
    (``@bugs.example.com``). A candidate counts only if it resolves back to
    the same route with the same arguments.
    """
    from django.utils.regex_helper import normalize

    args = [str(a) for a in (args or ())]
    kwargs = {k: str(v) for k, v in (kwargs or {}).items()}
    if args and kwargs:
        raise ValueError("Don't mix *args and **kwargs in a call to reverse()!")
    *namespaces, name = viewname.split(":")
    resolver = get_resolver(mailconf)
    found = False
    for route_namespaces, chain, pattern in resolver.iter_routes():
        if pattern.name != name or list(route_namespaces) != namespaces:
            continue
        found = True
        levels = [*chain, pattern]
        for combo in itertools.product(*(normalize(level.regex_string) for level in levels)):
            params = [p for _, level_params in combo for p in level_params]
            defaults = {
                k: str(v)
                for level in levels
                for k, v in getattr(
                    level, "default_kwargs", getattr(level, "default_args", {})
                ).items()
            }
            if kwargs:
                if set(kwargs).symmetric_difference(params).difference(defaults):
                    continue
                values = {**defaults, **kwargs}
                texts = [fmt % {p: values[p] for p in level_params} for fmt, level_params in combo]
            else:
                if len(params) != len(args):
                    continue
                positional = iter(args)
                texts = [
                    fmt % {p: next(positional) for p in level_params} for fmt, level_params in combo
                ]
            address = texts[-1]
            for level, text in zip(reversed(levels[:-1]), reversed(texts[:-1]), strict=True):
                address = text + address if level.regex_string.startswith("^") else address + text
            try:
                match = resolver.resolve(address)
            except RecipientNotFound:
                continue
            if match.route_name == name and match.namespaces == namespaces:
                if (kwargs and all(match.kwargs.get(k) == v for k, v in kwargs.items())) or (
                    not kwargs and list(match.args) == args
                ):
                    return _signed(viewname, address, match, sign, bind, expires)
    if not found:
        raise NoReverseMatch(f"No mail route named {viewname!r}.")
    raise NoReverseMatch(
        f"The mail route {viewname!r} cannot be reversed with args={args!r} and "
        f"kwargs={kwargs!r}: no address built from its patterns resolves back to it."
    )


def _signed(viewname: str, address: str, match: ResolverMatch, sign, bind, expires) -> str:
    """The reversed address, signed when the route wants it (and only then)."""
    if not match.signed:
        if sign or bind is not None or expires is not None:
            raise NoReverseMatch(
                f"The mail route {viewname!r} is not signed: declare it with signed=True "
                "for its token to be checked."
            )
        return address
    if not sign:
        raise NoReverseMatch(
            f"The mail route {viewname!r} takes only signed addresses: pass sign=True."
        )
    from .signing import sign_address

    try:
        return sign_address(address, bind=bind, expires=expires)
    except ValueError as exc:
        raise NoReverseMatch(str(exc)) from None
