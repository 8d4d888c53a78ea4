"""The web layer of RabbitLens: HTTP and Socket.IO. It calls ``rabbit/`` and knows no AMQP details itself."""
