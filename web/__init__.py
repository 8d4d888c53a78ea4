"""The web layer of RabbitLens: HTTP routes and the live Socket.IO hub. It calls the services of ``lab/`` and
imports no pika."""
