"""The lab's areas as services that know nothing of Flask or Socket.IO (see issue 16)."""
