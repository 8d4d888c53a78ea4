"""The AMQP layer of RabbitLens: knows pika and RabbitMQ, nothing of Flask.

Modules take plain arguments and report through an injected ``on_event(name, payload)``
sink, so they run the same in the web app, in a script, in a test or in a fib server.
"""
