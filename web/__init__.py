"""The web layer of RabbitLens: HTTP routes and the live Socket.IO hub. It calls the services of ``lab/`` and
imports no pika.

A route is a request model in, one service call, the answer out; ``service().publish(**dict(body))`` hands the
model's fields over as keyword arguments (``dict()`` is shallow: a nested ``MessageProperties`` stays one), so a
request model and its service method name their parameters alike.
"""
