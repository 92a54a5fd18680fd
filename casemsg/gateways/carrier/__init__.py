"""Carrier-grade sending, its tables: a route's further gateways in order and each gateway's circuit
(failover, `casemsg.gateways.failover`), and number pools with the sender each recipient keeps
(`casemsg.gateways.pools`). A Django app of its own inside the gateways area (label `carrier`) so that its
migrations are its own; its logic lives beside the other gateway modules."""
