"""Fake SMS providers on 127.0.0.1 speaking each provider's format: the test suite's and the benchmarks' stand-ins for
Twilio, Telerivet, Africa's Talking and generic HTTP gateways (`fakes.gateways`). Not part of casemsg itself."""
