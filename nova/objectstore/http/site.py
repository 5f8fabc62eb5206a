"""
The object store's web site: what the C{nova-objectstore} plugin and the
all-in-one listen with.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from twisted.web import server

from nova.objectstore.http.request import request_factory
from nova.objectstore.http.resource import S3Resource
from nova.objectstore.http.service import S3Service


def build_service(store: Any, auth: Any, clock: Any, config: Any,
                  run_in_thread: Callable[..., Awaitable[Any]], **options: Any) -> S3Service:
    """
    @param options: passed to L{S3Service} (C{max_xml_body}, C{max_skew},
        C{use_sendfile}, C{region}: pass C{NovaConfig.region}).
    @return: the S3 service over C{store}.
    """
    return S3Service(store, auth, clock, config, run_in_thread, **options)


def build_site(store: Any, auth: Any, clock: Any, config: Any,
               run_in_thread: Callable[..., Awaitable[Any]], *, timeout: float = 60.0,
               **options: Any) -> server.Site:
    """
    Build the S3 web site.

    @param store: an L{nova.objectstore.interfaces.IObjectStore}, open.
    @param auth: the L{nova.auth.manager.AuthManager}.
    @param clock: the reactor (C{IReactorTime}: signature times, deferred calls).
    @param config: the L{nova.config.ObjectStoreConfig} (C{virtual_host_suffix}).
    @param run_in_thread: runs a blocking function off the reactor thread
        (C{await run_in_thread(fn, *args)}), e.g. C{NovaServer.run_in_thread}.
    @param timeout: seconds a connection may stay idle (and a client may
        pause in the middle of a body) before it is closed.
    @param options: see L{build_service}.
    @return: a L{server.Site} whose requests stream object uploads; listen
        with it (e.g. C{reactor.listenTCP(config.port, site, interface=config.listen)}).
    """
    service = build_service(store, auth, clock, config, run_in_thread, **options)
    site = server.Site(S3Resource(service), requestFactory=request_factory(service),
                       parsePOSTFormSubmission=False, timeout=timeout, reactor=clock)
    site.displayTracebacks = False
    site.noisy = False
    return site


__all__ = ["build_service", "build_site"]
