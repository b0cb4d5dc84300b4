"""Remote sites: ``gridbus bridge`` joins DDS domains over an authenticated, encrypted Zenoh link.

Modules: :mod:`.bridge` (the Bridge), :mod:`.site` (raw DDS readers and
writers per topic), :mod:`.policy` (allow/deny, rate caps), :mod:`.commands`
(acknowledged commands within their lifespan), :mod:`.wire` (key expressions
and headers), :mod:`.link` (the mutual-TLS Zenoh session), :mod:`.config`
(options and the TOML file), :mod:`.pki` (a lab CA and certificates),
:mod:`.boards` (boards without DDS), :mod:`.bench` (added latency and
throughput).  Importing this package needs neither zenoh nor cyclonedds;
its modules import what they use.
"""
