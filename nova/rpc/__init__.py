"""
nova's RPC: services call each other through a message bus.

    transport = make_transport(reactor, config.rpc)
    await transport.start()
    await transport.consume("compute", Dispatcher(manager))
    await transport.consume(f"compute.{config.host}", Dispatcher(manager))
    result = await transport.call("compute.host1", "get_console_output",
                                  {"instance_id": "i-1"}, context)

Managers mark what is callable with L{expose}. See L{nova.rpc.interfaces} for
the contract, L{nova.rpc.local} and L{nova.rpc.amqp} for the transports.
"""

from __future__ import annotations

from typing import Any

from nova.config import RpcConfig
from nova.rpc.dispatcher import Dispatcher, expose
from nova.rpc.interfaces import IConsumer, IDispatcher, IRPCTransport

__all__ = ["Dispatcher", "IConsumer", "IDispatcher", "IRPCTransport", "expose",
           "make_transport"]


def make_transport(reactor: Any, config: RpcConfig) -> IRPCTransport:
    """
    @param reactor: the reactor (C{IReactorTCP} and C{IReactorTime}).
    @param config: the C{[rpc]} settings; C{transport} picks the kind.
    @return: an unstarted L{IRPCTransport}: an L{nova.rpc.amqp.AMQPTransport}
        for C{amqp}, else a new L{nova.rpc.local.LocalBroker} (one process).
    """
    if config.transport == "amqp":
        from nova.rpc.amqp import AMQPTransport

        return AMQPTransport(reactor, config)
    from nova.rpc.local import LocalBroker

    return LocalBroker(reactor, config)
