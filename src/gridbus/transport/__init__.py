"""Boards without Cyclone DDS: the DAQ agent and translators over Zenoh, to their site's bridge.

There is no cyclonedds wheel for ARM boards, while ``eclipse-zenoh`` ships
them.  A board installs ``gridbus[zenoh]`` and talks mutual-TLS Zenoh to its
site's bridge (``gridbus bridge --boards``), which puts its samples on the
site's DDS domain and hands it the commands addressed to its objects.  This
package imports neither cyclonedds nor gridbus's generated types: the board
learns each topic's fields from the bridge (:mod:`.schema`) and sends them
as JSON (:mod:`.board`); the bridge builds and checks the DDS sample.
"""
