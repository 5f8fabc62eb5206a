"""
The RPC seam: how nova services call each other over the message bus.

Routing is as in 2010 nova: one topic exchange; a service consumes its topic
(C{compute}) and its host's topic (C{compute.host1}) by calling
L{IRPCTransport.consume} twice. Several consumers of one topic share its
messages round-robin, like consumers of one AMQP queue.

Two providers: L{nova.rpc.local.LocalBroker} (in-process) and
L{nova.rpc.amqp.AMQPTransport} (RabbitMQ through txamqp). Both pass the same
contract tests (C{tests/test_rpc_contract.py}).
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IDispatcher(Interface):
    """Calls the methods a service exposes (see L{nova.rpc.dispatcher.Dispatcher})."""

    def dispatch(method, args, context):  # type: ignore[no-untyped-def]
        """
        Call an exposed method.

        @param method: the method name (C{str}) from the message.
        @param args: its keyword arguments (C{dict}).
        @param context: the caller's context as a dict, or C{None}.
        @return: a Deferred firing with the JSON-able result or failing with the
            method's exception.
        """


class IConsumer(Interface):
    """One registration of a dispatcher on a topic."""

    topic = Attribute("The topic (C{str}) this consumer receives.")

    def stop():  # type: ignore[no-untyped-def]
        """
        Stop receiving: once the Deferred fires no new message reaches this
        consumer's dispatcher (messages already being handled finish). Messages
        left on the topic stay queued for the topic's other or future consumers.
        Calling it again does nothing.

        @return: a Deferred firing with C{None}.
        """


class IRPCTransport(Interface):
    """A connection to the message bus, for one process."""

    def start():  # type: ignore[no-untyped-def]
        """
        Connect. Calling it again (while started) does nothing.

        @return: a Deferred firing with C{None} once connected.
        @raise nova.rpc.errors.BrokerUnavailable: (in the Deferred) the broker
            cannot be reached.
        """

    def stop():  # type: ignore[no-untyped-def]
        """
        Disconnect: stop every consumer, fail every pending call with
        L{nova.rpc.errors.TransportStopped}, close the connection.

        @return: a Deferred firing with C{None} once everything is closed.
        """

    def when_connected():  # type: ignore[no-untyped-def]
        """
        @return: a Deferred firing with C{None} when the transport is connected:
            at once if it is, else on the next (re)connection.
        """

    def call(topic, method, args, context=None, timeout=None):  # type: ignore[no-untyped-def]
        """
        Call C{method} on one consumer of C{topic} and wait for its reply.

        @param topic: e.g. C{scheduler} or C{compute.host1}.
        @param method: the name of an exposed method.
        @param args: its keyword arguments; JSON-able.
        @param context: a L{nova.context.RequestContext}; C{None} means an
            anonymous, unprivileged context on the far side (pass
            C{RequestContext.system()} for nova's own actions).
        @param timeout: seconds to wait; C{None} means the configured
            C{rpc.call_timeout}.
        @return: a Deferred firing with the method's JSON-able return value.
        @raise nova.exception.RemoteError: (in the Deferred) the remote method
            or the remote dispatcher failed; it carries the remote type,
            message, code and status.
        @raise nova.exception.RPCTimeout: (in the Deferred) no reply in time; a
            late reply is dropped quietly.
        @raise nova.rpc.errors.MessageEncodingError: (in the Deferred) C{args}
            are not JSON-able.
        @raise nova.rpc.errors.TransportError: (in the Deferred) not connected,
            connection lost while waiting, or transport stopped.
        """

    def cast(topic, method, args, context=None):  # type: ignore[no-untyped-def]
        """
        Send C{method} to one consumer of C{topic} without waiting for it.

        @return: a Deferred firing with C{None} once the message is handed to
            the broker; nothing reports whether or how the method ran.
        @raise nova.rpc.errors.MessageEncodingError: (in the Deferred) C{args}
            are not JSON-able.
        @raise nova.rpc.errors.TransportError: (in the Deferred) not connected.
        """

    def consume(topic, dispatcher):  # type: ignore[no-untyped-def]
        """
        Receive the messages of C{topic} and hand them to C{dispatcher}.

        @param dispatcher: an L{IDispatcher}.
        @return: a Deferred firing with an L{IConsumer} once messages flow.
        """
