"""The lab's areas as services (topology, traffic, watch, rpc): state and rules, on rabbit/, without Flask."""
